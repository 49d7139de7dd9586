//! Placing a window of rows around a cursor on screen.

/// First row to show so that the cursor (index `cursor` of `len` rows) sits
/// on screen line `want` of a `height`-line area when possible, and the
/// area is filled when there are enough rows.
pub fn top(len: usize, cursor: usize, want: usize, height: usize) -> usize {
    if height == 0 || len == 0 {
        return 0;
    }
    let want = want.min(height - 1).min(cursor);
    let top = cursor - want;
    // Fill the area: do not leave blank lines below if rows exist above.
    let max_top = len.saturating_sub(height);
    top.min(max_top).min(cursor)
}

/// The rows that fit a `height`-line area, with their indexes, placed by
/// [`top`] around `cursor` (the first row when there is none).
pub fn window<R>(
    rows: &[R],
    cursor: Option<usize>,
    want: usize,
    height: usize,
) -> impl Iterator<Item = (usize, &R)> {
    let first = top(rows.len(), cursor.unwrap_or(0), want, height);
    rows.iter().enumerate().skip(first).take(height)
}

#[cfg(test)]
mod tests {
    use super::top;

    #[test]
    fn keeps_the_cursor_line_and_fills_the_area() {
        assert_eq!(top(100, 50, 10, 20), 40);
        assert_eq!(top(100, 5, 10, 20), 0);
        assert_eq!(top(100, 99, 10, 20), 80);
        assert_eq!(top(3, 2, 10, 20), 0);
        assert_eq!(top(0, 0, 0, 0), 0);
    }
}
