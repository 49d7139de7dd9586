//! Agent addresses: `vsock:CID:PORT`, `tcp:HOST:PORT`, `unix:PATH`,
//! `serial:/dev/vportNpM`.

use std::{fmt, path::PathBuf};

/// `VMADDR_CID_ANY`: listen on every CID of this machine.
pub const VSOCK_CID_ANY: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Vsock {
        cid: u32,
        port: u32,
    },
    /// `host:port` as given (a name, an IPv4 address or `[v6]`).
    Tcp(String),
    Unix(PathBuf),
    /// A virtio-serial port (a character device), agents only.
    Serial(PathBuf),
}

/// An address that does not parse; says which part and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddrError(String);

impl From<String> for AddrError {
    fn from(s: String) -> Self {
        AddrError(s)
    }
}

const FORMS: &str = "vsock:CID:PORT, tcp:HOST:PORT, unix:PATH or serial:/dev/vportNpM";

impl Addr {
    /// An address to connect to (`agent --connect`).
    pub fn parse_connect(s: &str) -> Result<Addr, AddrError> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("bad address {s:?}: expected {FORMS}"))?;
        match scheme {
            "vsock" => {
                let (cid, port) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("bad vsock address {s:?}: expected vsock:CID:PORT"))?;
                Ok(Addr::Vsock {
                    cid: parse_num(cid, "vsock CID", s)?,
                    port: parse_num(port, "vsock port", s)?,
                })
            }
            "tcp" => {
                let (host, port) = split_host_port(rest)
                    .ok_or_else(|| format!("bad tcp address {s:?}: expected tcp:HOST:PORT"))?;
                if host.is_empty() {
                    return Err(format!("bad tcp address {s:?}: no host").into());
                }
                let _: u16 = parse_num(port, "tcp port", s)?;
                Ok(Addr::Tcp(rest.to_string()))
            }
            "unix" | "serial" if rest.is_empty() => {
                Err(format!("bad address {s:?}: no path").into())
            }
            "unix" => Ok(Addr::Unix(rest.into())),
            "serial" => Ok(Addr::Serial(rest.into())),
            _ => {
                Err(format!("unknown address scheme {scheme:?} in {s:?}: expected {FORMS}").into())
            }
        }
    }

    /// An address to listen on (`--listen`). `tcp:PORT` binds loopback
    /// (127.0.0.1); another interface must be named (`tcp:0.0.0.0:PORT`).
    /// `vsock:PORT` listens on every CID. virtio-serial ports are opened by
    /// agents; on the host, point QEMU's chardev at a `unix:` listener.
    pub fn parse_listen(s: &str) -> Result<Addr, AddrError> {
        if let Some(rest) = s.strip_prefix("tcp:") {
            if split_host_port(rest).is_none() {
                let _: u16 = parse_num(rest, "tcp port", s)?;
                return Ok(Addr::Tcp(format!("127.0.0.1:{rest}")));
            }
        }
        if let Some(rest) = s.strip_prefix("vsock:") {
            if !rest.contains(':') {
                return Ok(Addr::Vsock {
                    cid: VSOCK_CID_ANY,
                    port: parse_num(rest, "vsock port", s)?,
                });
            }
        }
        match Addr::parse_connect(s)? {
            Addr::Serial(p) => Err(format!(
                "cannot listen on serial:{}: a virtio-serial port is opened by the agent in the \
                 guest; on the host give QEMU `-chardev socket,id=vt,path=PATH,reconnect=1` and \
                 listen on unix:PATH",
                p.display()
            )
            .into()),
            a => Ok(a),
        }
    }

    /// TCP reaches beyond this machine: a token is required.
    pub fn needs_token(&self) -> bool {
        matches!(self, Addr::Tcp(_))
    }
}

fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port));
    }
    s.rsplit_once(':')
}

fn parse_num<T: std::str::FromStr>(v: &str, what: &str, whole: &str) -> Result<T, AddrError> {
    v.parse()
        .map_err(|_| AddrError(format!("bad {what} {v:?} in {whole:?}")))
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Vsock { cid, port } if *cid == VSOCK_CID_ANY => write!(f, "vsock:{port}"),
            Addr::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Addr::Tcp(hp) => write!(f, "tcp:{hp}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Serial(p) => write!(f, "serial:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_forms() {
        assert_eq!(
            Addr::parse_connect("vsock:2:5000"),
            Ok(Addr::Vsock { cid: 2, port: 5000 })
        );
        assert_eq!(
            Addr::parse_connect("tcp:10.0.0.1:7000"),
            Ok(Addr::Tcp("10.0.0.1:7000".into()))
        );
        assert_eq!(
            Addr::parse_connect("tcp:[::1]:7000"),
            Ok(Addr::Tcp("[::1]:7000".into()))
        );
        assert_eq!(
            Addr::parse_connect("unix:/run/vt.sock"),
            Ok(Addr::Unix("/run/vt.sock".into()))
        );
        assert_eq!(
            Addr::parse_connect("serial:/dev/vport0p1"),
            Ok(Addr::Serial("/dev/vport0p1".into()))
        );
        for bad in [
            "",
            "tcp:7000",
            "tcp::7000",
            "tcp:h:x",
            "vsock:2",
            "unix:",
            "udp:1:2",
            "x",
        ] {
            assert!(Addr::parse_connect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_defaults_to_loopback() {
        assert_eq!(
            Addr::parse_listen("tcp:7000"),
            Ok(Addr::Tcp("127.0.0.1:7000".into()))
        );
        assert_eq!(
            Addr::parse_listen("tcp:0.0.0.0:7000"),
            Ok(Addr::Tcp("0.0.0.0:7000".into()))
        );
        assert_eq!(
            Addr::parse_listen("vsock:5000"),
            Ok(Addr::Vsock {
                cid: VSOCK_CID_ANY,
                port: 5000
            })
        );
        let e = Addr::parse_listen("serial:/dev/vport0p1").unwrap_err();
        assert!(e.to_string().contains("unix:"), "{e}");
        assert!(Addr::parse_listen("tcp:99999").is_err());
        assert!(Addr::parse_listen("tcp:0").unwrap().needs_token());
        assert!(!Addr::parse_listen("unix:/x").unwrap().needs_token());
    }
}
