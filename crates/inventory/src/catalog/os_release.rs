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
    /// `CPE_NAME` (`cpe:/o:suse:sles_sap:15:sp4`), if any.
    pub cpe_name: Option<String>,
    /// The vendor's update stream or product the packages come from when it is not the
    /// release's main one, with the release it covers, as advisories name it: Red Hat's
    /// `rhel_eus:9.2`, `rhel_aus:8.4`, `rhel_e4s:9.0`, `rhel_tus:8.6`, `rhel_els:7` (from
    /// content manifests and enabled repositories, see `catalog/red_hat.rs`); SUSE's
    /// `15.4-LTSS` for SLES with Long Term Service Pack Support, `15.4-SAP` for SLES for SAP
    /// Applications, `15.4-HPC`, `15.4-HPC-LTSS` and `15.4-HPC-ESPOS` for SLE High
    /// Performance Computing and its streams (from `etc/products.d`, `ID` and `CPE_NAME`,
    /// see `catalog/suse.rs`); openEuler's support label `LTS-SP3` (from `VERSION` or
    /// `etc/openEuler-release`).
    pub stream: Option<String>,
}

impl Distro {
    /// The vulnerability database's ecosystem for this distribution's packages
    /// (`Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04`, `Rocky Linux:9`, `Red Hat:rhel_eus:9.2`,
    /// `SUSE:15.4-LTSS`, `SUSE:Linux Micro 6.0`, `openEuler:22.03-LTS-SP3`, ...), or `None`
    /// for a distribution this crate does not know. Distributions without advisories in OSV
    /// form are named all the same (`Amazon Linux:2023`, `Oracle Linux:9`, `Fedora:40`), so
    /// that their packages are never taken for another distribution's.
    ///
    /// SLES's products and streams with fixes of their own (LTSS, SLES for SAP
    /// Applications, SLE HPC and its LTSS and ESPOS streams) are releases of their own
    /// ([`Distro::stream`]: `SUSE:15.4-SAP`). SUSE's Micro products are too, named in
    /// advisories as the product is (`SUSE:Linux Enterprise Micro 5.5`, `SUSE:Linux Enterprise Micro for Rancher 5.4`,
    /// `SUSE:Linux Micro 6.0`, `openSUSE:Leap Micro 5.5`), and `os-release` tells them apart
    /// by `ID` (`sle-micro`, `sle-micro-rancher`, `sl-micro`, `opensuse-leap-micro`).
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
            // Rolling distributions: OSV names them without a release.
            "wolfi" => ("Wolfi", String::new()),
            "chainguard" => ("Chainguard", String::new()),
            "minimos" => ("MinimOS", String::new()),
            "echo" => ("Echo", String::new()),
            "mageia" => ("Mageia", major.to_owned()),
            "rhel" => match &self.stream {
                Some(stream) => ("Red Hat", stream.clone()),
                None => ("Red Hat", major.to_owned()),
            },
            "centos" => ("Red Hat", major.to_owned()),
            // OSV names openEuler's releases with their support label (`22.03-LTS-SP3`);
            // an innovation release has none (`23.09`).
            "openeuler" if release.is_empty() => return None,
            "openeuler" => match &self.stream {
                Some(label) => ("openEuler", format!("{release}-{label}")),
                None => ("openEuler", release.to_owned()),
            },
            // OSV carries no advisories for these; their repositories' updateinfo.xml does
            // (`palisade db import`), and until it is imported a scan says no source covers
            // them. Amazon Linux 1 is one rolling release whose advisories (`ALAS-`) are for
            // its last version, 2018.03, whichever `VERSION_ID` (2017.09, ...) an image has.
            "amzn" if release.contains('.') => ("Amazon Linux", "2018.03".to_owned()),
            "amzn" => ("Amazon Linux", release.to_owned()),
            "ol" => ("Oracle Linux", major.to_owned()),
            "fedora" => ("Fedora", major.to_owned()),
            "rocky" => ("Rocky Linux", major.to_owned()),
            "almalinux" => ("AlmaLinux", major.to_owned()),
            // SLES for SAP Applications 12 and SLE HPC name themselves in `ID`; SLES for SAP
            // 15 says `sles` there (its product file and `CPE_NAME` tell it apart).
            id if super::suse::is_sles(id) => match &self.stream {
                Some(stream) => ("SUSE", stream.clone()),
                None => ("SUSE", release.to_owned()),
            },
            // A Micro release without a version names no advisory data.
            "sle-micro" | "sle-micro-rancher" | "sl-micro" | "opensuse-leap-micro"
                if release.is_empty() =>
            {
                return None;
            }
            "sle-micro" => ("SUSE", format!("Linux Enterprise Micro {release}")),
            "sle-micro-rancher" => (
                "SUSE",
                format!("Linux Enterprise Micro for Rancher {release}"),
            ),
            "sl-micro" => ("SUSE", format!("Linux Micro {release}")),
            "opensuse-leap-micro" => ("openSUSE", format!("Leap Micro {release}")),
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

    /// [`Distro::ecosystem`], or for a distribution this crate does not map its `ID` and
    /// release (`anolis:8.8`, `kylin:V10`): its packages are named by what they are, never
    /// taken for another distribution's, and no advisory source covers them.
    pub(crate) fn own_ecosystem(&self) -> String {
        self.ecosystem().unwrap_or_else(|| {
            match self.version_id.as_deref().or(self.codename.as_deref()) {
                Some(release) => format!("{}:{release}", self.id),
                None => self.id.clone(),
            }
        })
    }

    /// The cataloger of this distribution's package database, if known.
    pub fn package_format(&self) -> Option<Cataloger> {
        let ecosystem = self.ecosystem()?;
        Some(match ecosystem.split(':').next().unwrap_or_default() {
            "Debian" | "Ubuntu" | "Echo" => Cataloger::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" | "MinimOS" => Cataloger::Apk,
            _ => Cataloger::Rpm,
        })
    }

    /// The purl namespace (the vendor) of this distribution's packages: the `ID`, except
    /// where Syft and Trivy name the vendor (`pkg:rpm/redhat/bash@...`,
    /// `pkg:rpm/amazon/...`, `pkg:rpm/oracle/...`).
    pub(crate) fn purl_namespace(&self) -> &str {
        match self.id.as_str() {
            "rhel" => "redhat",
            "amzn" => "amazon",
            "ol" => "oracle",
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
        cpe_name: None,
        stream: None,
    };
    let mut version = None;
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
            "CPE_NAME" => distro.cpe_name = Some(value),
            "VERSION" => version = Some(value),
            _ => {}
        }
    }
    if distro.id == "openeuler" {
        distro.stream = version.as_deref().and_then(openeuler_label);
    }
    distro
}

/// openEuler's support label, which `VERSION` and `etc/openEuler-release` give in
/// parentheses after the release (`22.03 (LTS-SP3)` → `LTS-SP3`, `24.03 (LTS)` → `LTS`);
/// `None` for an innovation release (`23.09`).
pub(crate) fn openeuler_label(version: &str) -> Option<String> {
    let (_, rest) = version.split_once('(')?;
    let label = rest.split_once(')')?.0.trim();
    (!label.is_empty() && !label.contains(char::is_whitespace)).then(|| label.to_owned())
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
        let mut eus = parse("ID=\"rhel\"\nVERSION_ID=\"9.2\"\n");
        eus.stream = Some("rhel_eus:9.2".to_owned());
        assert_eq!(eus.ecosystem().as_deref(), Some("Red Hat:rhel_eus:9.2"));
        assert_eq!(eus.package_format(), Some(crate::Cataloger::Rpm));
    }

    /// Distributions OSV has advisories for that used to fall back to another's ecosystem
    /// (their packages were labelled `Red Hat`, `Debian` or `Alpine` and matched nothing).
    #[test]
    fn mageia_minimos_and_echo_releases() {
        let mageia = parse("NAME=\"Mageia\"\nVERSION=\"9\"\nID=mageia\nVERSION_ID=9\n");
        assert_eq!(mageia.ecosystem().as_deref(), Some("Mageia:9"));
        assert_eq!(mageia.package_format(), Some(crate::Cataloger::Rpm));
        let minimos = parse("ID=minimos\nNAME=\"MinimOS\"\nVERSION_ID=20240805\n");
        assert_eq!(minimos.ecosystem().as_deref(), Some("MinimOS"));
        assert_eq!(minimos.package_format(), Some(crate::Cataloger::Apk));
        let echo = parse("ID=echo\nNAME=\"Echo\"\nID_LIKE=debian\n");
        assert_eq!(echo.ecosystem().as_deref(), Some("Echo"));
        assert_eq!(echo.package_format(), Some(crate::Cataloger::Dpkg));
    }

    /// openEuler's `os-release`, as its images ship it: OSV files advisories under the
    /// release with its support label.
    #[test]
    fn openeuler_releases_carry_their_support_label() {
        let sp3 = parse(
            "NAME=\"openEuler\"\nVERSION=\"22.03 (LTS-SP3)\"\nID=\"openEuler\"\n\
             VERSION_ID=\"22.03\"\nPRETTY_NAME=\"openEuler 22.03 (LTS-SP3)\"\nANSI_COLOR=\"0;31\"\n",
        );
        assert_eq!(sp3.ecosystem().as_deref(), Some("openEuler:22.03-LTS-SP3"));
        assert_eq!(sp3.package_format(), Some(crate::Cataloger::Rpm));
        assert_eq!(sp3.purl_namespace(), "openeuler");
        let lts = parse(
            "NAME=\"openEuler\"\nVERSION=\"24.03 (LTS)\"\nID=\"openEuler\"\nVERSION_ID=\"24.03\"\n",
        );
        assert_eq!(lts.ecosystem().as_deref(), Some("openEuler:24.03-LTS"));
        let innovation = parse("VERSION=\"23.09\"\nID=\"openEuler\"\nVERSION_ID=\"23.09\"\n");
        assert_eq!(innovation.ecosystem().as_deref(), Some("openEuler:23.09"));
        assert_eq!(parse("ID=openEuler\n").ecosystem(), None);
    }

    /// Amazon Linux 1 and 2 (whole roots with each: `tests/inventory/releases.rs`).
    #[test]
    fn amazon_linux_releases_are_named_by_their_version() {
        let amazon2 = parse(
            "NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\n\
             VERSION_ID=\"2\"\n",
        );
        assert_eq!(amazon2.ecosystem().as_deref(), Some("Amazon Linux:2"));
        assert_eq!(amazon2.purl_namespace(), "amazon");
        assert_eq!(amazon2.purl_qualifier(), "amzn-2");
        let amazon1 = parse("ID=\"amzn\"\nVERSION_ID=\"2018.03\"\n");
        assert_eq!(amazon1.ecosystem().as_deref(), Some("Amazon Linux:2018.03"));
        let amazon1_older = parse("ID=\"amzn\"\nVERSION_ID=\"2017.09\"\n");
        assert_eq!(
            amazon1_older.ecosystem().as_deref(),
            Some("Amazon Linux:2018.03")
        );
        assert_eq!(
            parse("ID=\"ol\"\nVERSION_ID=\"7.9\"\n").purl_namespace(),
            "oracle"
        );
    }

    /// An rpm distribution this crate does not map keeps its own name.
    #[test]
    fn unmapped_distributions_keep_their_own_name() {
        let anolis = parse(
            "NAME=\"Anolis OS\"\nVERSION=\"8.8\"\nID=\"anolis\"\nID_LIKE=\"rhel fedora centos\"\n\
             VERSION_ID=\"8.8\"\n",
        );
        assert_eq!(anolis.ecosystem(), None);
        assert_eq!(anolis.own_ecosystem(), "anolis:8.8");
        assert_eq!(parse("ID=gentoo\n").own_ecosystem(), "gentoo");
        let rhel = parse("ID=\"rhel\"\nVERSION_ID=\"9.3\"\n");
        assert_eq!(rhel.own_ecosystem(), "Red Hat:9");
    }

    /// The `os-release` files of SUSE's Micro products, as their images ship them.
    #[test]
    fn suse_micro_releases() {
        let cases = [
            (
                "NAME=\"SLE Micro\"\nVERSION=\"5.5\"\nVERSION_ID=\"5.5\"\n\
                 PRETTY_NAME=\"SUSE Linux Enterprise Micro 5.5\"\nID=\"sle-micro\"\n\
                 ID_LIKE=\"suse\"\nCPE_NAME=\"cpe:/o:suse:sle-micro:5.5\"\n",
                "SUSE:Linux Enterprise Micro 5.5",
            ),
            (
                "NAME=\"SLE Micro for Rancher\"\nVERSION_ID=\"5.4\"\nID=\"sle-micro-rancher\"\n\
                 ID_LIKE=\"suse sle-micro\"\n",
                "SUSE:Linux Enterprise Micro for Rancher 5.4",
            ),
            (
                "NAME=\"SL-Micro\"\nVERSION=\"6.0\"\nVERSION_ID=\"6.0\"\n\
                 PRETTY_NAME=\"SUSE Linux Micro 6.0\"\nID=\"sl-micro\"\nID_LIKE=\"suse\"\n\
                 CPE_NAME=\"cpe:/o:suse:sl-micro:6.0\"\n",
                "SUSE:Linux Micro 6.0",
            ),
            (
                "NAME=\"openSUSE Leap Micro\"\nVERSION=\"5.5\"\nID=\"opensuse-leap-micro\"\n\
                 ID_LIKE=\"suse opensuse opensuse-leap\"\nVERSION_ID=\"5.5\"\n\
                 PRETTY_NAME=\"openSUSE Leap Micro 5.5\"\n",
                "openSUSE:Leap Micro 5.5",
            ),
        ];
        for (text, expected) in cases {
            let distro = parse(text);
            assert_eq!(distro.ecosystem().as_deref(), Some(expected), "{text}");
            assert_eq!(distro.package_format(), Some(crate::Cataloger::Rpm));
        }
        assert_eq!(parse("ID=\"sl-micro\"\n").ecosystem(), None);
    }
}
