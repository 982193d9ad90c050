//! CIDR blocks for `ipBlock`, `networks` and Palisade's CIDR objects (IPv4 and IPv6).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation, such as `10.0.0.0/8` or `fd00::/8`.
///
/// Host bits are accepted and cleared, as the Kubernetes API accepts `192.168.242.213/24`
/// and means `192.168.242.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {text:?}: {reason}")]
pub struct CidrError {
    text: String,
    reason: &'static str,
}

impl IpNet {
    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` is inside the network. Addresses of the other family never are.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(ip) & mask == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(network)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<IpNet, CidrError> {
        let error = |reason| CidrError {
            text: text.to_owned(),
            reason,
        };
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| error("expected ADDRESS/PREFIX"))?;
        let address: IpAddr = address.parse().map_err(|_| error("bad address"))?;
        let prefix: u8 = if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("bad prefix length"));
        } else {
            prefix.parse().map_err(|_| error("bad prefix length"))?
        };
        let network = match address {
            IpAddr::V4(v4) => {
                if prefix > 32 {
                    return Err(error("prefix length above 32"));
                }
                IpAddr::V4((u32::from(v4) & mask_v4(prefix)).into())
            }
            IpAddr::V6(v6) => {
                if prefix > 128 {
                    return Err(error("prefix length above 128"));
                }
                IpAddr::V6((u128::from(v6) & mask_v6(prefix)).into())
            }
        };
        Ok(IpNet { network, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::IpNet;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_contains_and_clears_host_bits() {
        let net: IpNet = "192.168.242.213/24".parse().unwrap();
        assert_eq!(net.to_string(), "192.168.242.0/24");
        assert!(net.contains(ip("192.168.242.249")));
        assert!(!net.contains(ip("192.168.243.1")));
        assert!(!net.contains(ip("::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let host: IpNet = "10.0.0.1/32".parse().unwrap();
        assert!(host.contains(ip("10.0.0.1")));
        assert!(!host.contains(ip("10.0.0.2")));
    }

    #[test]
    fn ipv6_contains() {
        let net: IpNet = "fd00::/8".parse().unwrap();
        assert!(net.contains(ip("fd12::1")));
        assert!(!net.contains(ip("fe80::1")));
        assert!(!net.contains(ip("10.0.0.1")));
        let all: IpNet = "::/0".parse().unwrap();
        assert!(all.contains(ip("2001:db8::1")));
        let host: IpNet = "2001:db8::5/128".parse().unwrap();
        assert!(host.contains(ip("2001:db8::5")));
        assert!(!host.contains(ip("2001:db8::6")));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "::/129",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "1.2.3/8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad} parsed");
        }
    }
}
