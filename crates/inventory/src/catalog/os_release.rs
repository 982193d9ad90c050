//! `os-release`: which distribution and release a root holds.

use serde::Serialize;

use crate::catalog::Cataloger;

/// The distribution, from `os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, `ubuntu`, `rocky`, ...).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`, `22.04`, ...), if any.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`, ...), if any.
    pub codename: Option<String>,
    /// `PRETTY_NAME`, if any.
    pub pretty_name: Option<String>,
}

impl Distro {
    /// The vulnerability database's ecosystem for this distribution's packages
    /// (`Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04`, `Rocky Linux:9`, ...), or `None` for a
    /// distribution without advisory data in OSV form.
    pub fn ecosystem(&self) -> Option<String> {
        let release = self
            .version_id
            .as_deref()
            .or(self.codename.as_deref())
            .unwrap_or_default();
        let major = release.split('.').next().unwrap_or_default();
        let (base, release) = match self.id.as_str() {
            "debian" => ("Debian", major.to_owned()),
            "ubuntu" => ("Ubuntu", release.to_owned()),
            "alpine" => {
                let mut parts = release.split('.');
                match (parts.next(), parts.next()) {
                    (Some(major), Some(minor)) => ("Alpine", format!("v{major}.{minor}")),
                    _ => ("Alpine", String::new()),
                }
            }
            "wolfi" => ("Wolfi", String::new()),
            "chainguard" => ("Chainguard", String::new()),
            "rhel" | "centos" => ("Red Hat", major.to_owned()),
            "rocky" => ("Rocky Linux", major.to_owned()),
            "almalinux" => ("AlmaLinux", major.to_owned()),
            "sles" => ("SUSE", release.to_owned()),
            "opensuse-leap" => ("openSUSE", release.to_owned()),
            // A rolling release: its VERSION_ID is a snapshot date, OSV names it Tumbleweed.
            "opensuse-tumbleweed" => ("openSUSE", "Tumbleweed".to_owned()),
            "mariner" => ("Mariner", release.to_owned()),
            "azurelinux" => ("Azure Linux", release.to_owned()),
            "photon" => ("Photon OS", release.to_owned()),
            _ => return None,
        };
        Some(if release.is_empty() {
            base.to_owned()
        } else {
            format!("{base}:{release}")
        })
    }

    /// The cataloger of this distribution's package database, if known.
    pub fn package_format(&self) -> Option<Cataloger> {
        let ecosystem = self.ecosystem()?;
        Some(match ecosystem.split(':').next().unwrap_or_default() {
            "Debian" | "Ubuntu" => Cataloger::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Cataloger::Apk,
            _ => Cataloger::Rpm,
        })
    }

    /// The purl namespace (the vendor) of this distribution's packages: the `ID`, except
    /// `redhat` for RHEL, as Syft and Trivy write it (`pkg:rpm/redhat/bash@...`).
    pub(crate) fn purl_namespace(&self) -> &str {
        match self.id.as_str() {
            "rhel" => "redhat",
            id => id,
        }
    }

    /// The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`.
    pub fn purl_qualifier(&self) -> String {
        match self.version_id.as_deref().or(self.codename.as_deref()) {
            Some(release) => format!("{}-{release}", self.id),
            None => self.id.clone(),
        }
    }
}

/// Parses `KEY=value` lines with optional shell quoting.
pub(crate) fn parse(text: &str) -> Distro {
    let mut distro = Distro {
        id: "linux".to_owned(),
        version_id: None,
        codename: None,
        pretty_name: None,
    };
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']).to_owned();
        if value.is_empty() {
            continue;
        }
        match key {
            "ID" => distro.id = value.to_ascii_lowercase(),
            "VERSION_ID" => distro.version_id = Some(value),
            "VERSION_CODENAME" => distro.codename = Some(value),
            "PRETTY_NAME" => distro.pretty_name = Some(value),
            _ => {}
        }
    }
    distro
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn releases() {
        let debian = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        );
        assert_eq!(debian.ecosystem().as_deref(), Some("Debian:12"));
        assert_eq!(debian.purl_qualifier(), "debian-12");
        let alpine = parse("ID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(alpine.ecosystem().as_deref(), Some("Alpine:v3.19"));
        let sid = parse("ID=debian\nVERSION_CODENAME=trixie\n");
        assert_eq!(sid.ecosystem().as_deref(), Some("Debian:trixie"));
        assert_eq!(parse("ID=gentoo\n").ecosystem(), None);
        let rhel = parse("ID=\"rhel\"\nVERSION_ID=\"9.3\"\n");
        assert_eq!(rhel.ecosystem().as_deref(), Some("Red Hat:9"));
        assert_eq!(rhel.purl_namespace(), "redhat");
        assert_eq!(debian.purl_namespace(), "debian");
        let tumbleweed = parse("ID=\"opensuse-tumbleweed\"\nVERSION_ID=\"20240101\"\n");
        assert_eq!(
            tumbleweed.ecosystem().as_deref(),
            Some("openSUSE:Tumbleweed")
        );
        let sles = parse("ID=\"sles\"\nVERSION_ID=\"15.5\"\n");
        assert_eq!(sles.ecosystem().as_deref(), Some("SUSE:15.5"));
    }
}
