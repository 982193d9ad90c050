//! SUSE's installed products: which product line a SLES-based root is (SLES, SLES for SAP
//! Applications, SLE High Performance Computing) and whether it is on one of the streams that
//! get fixes after its service pack's general support (LTSS, ESPOS).
//!
//! Every registered SUSE product installs its product file into `etc/products.d/`, an XML
//! document naming the product and its version (`<name>SLES_SAP</name>`,
//! `<version>15.4</version>`): the base product's (`SLES.prod`, `SLES_SAP.prod`,
//! `SLE_HPC.prod`, which `baseproduct` links to), and one per extension activated with
//! `SUSEConnect -p` (`SLES-LTSS.prod` from `sles-ltss-release`, `SLES-ESPOS.prod`,
//! `SLE_HPC-LTSS.prod`, `SLE_HPC-ESPOS.prod`; on SLES for SAP, its LTSS as
//! `SLES_SAP-LTSS.prod` or the SLES LTSS product). SUSE's migration tools and Ansible read the same files to tell these
//! products apart; `os-release` does not always: SLES for SAP 15 says `ID="sles"` and only its
//! `CPE_NAME` (`cpe:/o:suse:sles_sap:15:sp4`) differs, while SLES for SAP 12 and SLE HPC name
//! themselves in `ID` (`sles_sap`, `sle_hpc`). Each product line and stream is a release of
//! its own in SUSE's advisories (`SUSE:Linux Enterprise Server for SAP Applications 15 SP4`,
//! `... High Performance Computing 15 SP4-LTSS`), named here as the vulnerability database
//! normalises them (`15.4-SAP`, `15.4-HPC-LTSS`); a system is matched against its product's
//! advisories and those of the service pack it is built from.

use crate::catalog::os_release::Distro;

/// An installed product, from its product file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product {
    /// `<name>`: `SLES`, `SLES-LTSS`, `SLES_SAP`, `SLE_HPC-ESPOS`, `sle-module-basesystem`, ...
    pub(crate) name: String,
    /// `<version>`: `15.4`, `12.5`.
    pub(crate) version: Option<String>,
}

/// The product a product file describes, or why it is not one.
pub(crate) fn parse_product(text: &str) -> Result<Product, String> {
    let element = |tag: &str| {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = start + text[start..].find(&format!("</{tag}>"))?;
        Some(text[start..end].trim().to_owned()).filter(|value| !value.is_empty())
    };
    let name = element("name").ok_or("not a product file (no <name>)")?;
    Ok(Product {
        name,
        version: element("version"),
    })
}

/// The os-release `ID`s of SUSE Linux Enterprise Server and the products built on it (SLES for
/// SAP Applications 12 and SLE HPC name themselves there; SLES for SAP 15 says `sles`).
pub(crate) fn is_sles(id: &str) -> bool {
    matches!(id, "sles" | "sles_sap" | "sle_hpc")
}

/// The release a SLES-based root's packages are matched under when it is not its service
/// pack's (`15.4-LTSS`, `15.4-ESPOS`, `15.4-SAP`, `15.4-SAP-LTSS`, `15.4-HPC`,
/// `15.4-HPC-LTSS`, `15.4-HPC-ESPOS`); `None` for plain SLES and other distributions. Only
/// product files of the release `os-release` names count: one left from another service
/// pack does not.
pub(crate) fn stream<'a>(
    distro: &Distro,
    products: impl IntoIterator<Item = &'a Product>,
) -> Option<String> {
    if !is_sles(&distro.id) {
        return None;
    }
    let release = distro.version_id.as_deref()?;
    let installed: Vec<&str> = products
        .into_iter()
        .filter(|product| {
            product
                .version
                .as_deref()
                .is_none_or(|version| is_version_of(version, release))
        })
        .map(|product| product.name.as_str())
        .collect();
    let has = |name: &str| installed.contains(&name);
    let cpe_product = distro
        .cpe_name
        .as_deref()
        .and_then(|cpe| cpe.strip_prefix("cpe:/o:suse:"))
        .and_then(|cpe| cpe.split(':').next())
        .unwrap_or_default();
    let suffix = if distro.id == "sles_sap" || cpe_product == "sles_sap" || has("SLES_SAP") {
        if has("SLES_SAP-LTSS") || has("SLES-LTSS") {
            "SAP-LTSS"
        } else {
            "SAP"
        }
    } else if distro.id == "sle_hpc"
        || matches!(cpe_product, "sle_hpc" | "sle-hpc")
        || has("SLE_HPC")
    {
        if has("SLE_HPC-LTSS") {
            "HPC-LTSS"
        } else if has("SLE_HPC-ESPOS") {
            "HPC-ESPOS"
        } else {
            "HPC"
        }
    } else if has("SLES-LTSS") {
        "LTSS"
    } else if has("SLES-ESPOS") {
        "ESPOS"
    } else {
        return None;
    };
    Some(format!("{release}-{suffix}"))
}

/// Whether a product file's `<version>` is the release `15.4`: `15.4` itself, or the bare
/// service pack number some stream products carry (`SLE_HPC-ESPOS-release` 4 on 15 SP4).
fn is_version_of(version: &str, release: &str) -> bool {
    version == release
        || release
            .split_once('.')
            .is_some_and(|(_, pack)| pack == version)
}

#[cfg(test)]
mod tests {
    use super::{Product, is_version_of, parse_product, stream};
    use crate::catalog::os_release::parse;

    /// `etc/products.d/SLES-LTSS.prod` as `sles-ltss-release` installs it (trimmed).
    const SLES_LTSS_PROD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<product schemeversion="0">
  <vendor>SUSE</vendor>
  <name>SLES-LTSS</name>
  <version>15.4</version>
  <baseversion>15</baseversion>
  <patchlevel>4</patchlevel>
  <release>0</release>
  <arch>x86_64</arch>
  <cpeid>cpe:/o:suse:sles-ltss:15:sp4</cpeid>
  <summary>SUSE Linux Enterprise Server LTSS 15 SP4</summary>
  <productline>SLES-LTSS</productline>
</product>
"#;

    #[test]
    fn the_ltss_product_file_puts_sles_on_its_stream() {
        let ltss = parse_product(SLES_LTSS_PROD).unwrap();
        assert_eq!(
            ltss,
            Product {
                name: "SLES-LTSS".to_owned(),
                version: Some("15.4".to_owned())
            }
        );
        let sles = parse("ID=\"sles\"\nVERSION_ID=\"15.4\"\n");
        assert_eq!(stream(&sles, [&ltss]).as_deref(), Some("15.4-LTSS"));
        // Without it, or with one left from another service pack, the main stream applies.
        let base =
            parse_product("<product><name>SLES</name><version>15.4</version></product>").unwrap();
        assert_eq!(stream(&sles, [&base]), None);
        let sp5 = parse("ID=\"sles\"\nVERSION_ID=\"15.5\"\n");
        assert_eq!(stream(&sp5, [&base, &ltss]), None);
        // Only SLES has this extension.
        let leap = parse("ID=\"opensuse-leap\"\nVERSION_ID=\"15.4\"\n");
        assert_eq!(stream(&leap, [&ltss]), None);
        assert_eq!(
            parse_product("<product></product>"),
            Err("not a product file (no <name>)".to_owned())
        );
        assert!(parse_product("<name>").is_err());
    }

    #[test]
    fn stream_products_count_for_their_own_release_only() {
        assert!(is_version_of("15.4", "15.4"));
        // `SLE_HPC-ESPOS-release` carries the bare service pack number.
        assert!(is_version_of("4", "15.4"));
        assert!(is_version_of("15", "15"));
        assert!(!is_version_of("15.3", "15.4"));
        assert!(!is_version_of("3", "15.4"));
        let product = |name: &str, version: &str| Product {
            name: name.to_owned(),
            version: Some(version.to_owned()),
        };
        let hpc = parse("ID=\"sle_hpc\"\nVERSION_ID=\"15.4\"\n");
        assert_eq!(stream(&hpc, []).as_deref(), Some("15.4-HPC"));
        assert_eq!(
            stream(&hpc, [&product("SLE_HPC-ESPOS", "4")]).as_deref(),
            Some("15.4-HPC-ESPOS")
        );
        assert_eq!(
            stream(&hpc, [&product("SLE_HPC-ESPOS", "3")]).as_deref(),
            Some("15.4-HPC")
        );
        let sap =
            parse("ID=\"sles\"\nVERSION_ID=\"15.4\"\nCPE_NAME=\"cpe:/o:suse:sles_sap:15:sp4\"\n");
        assert_eq!(stream(&sap, []).as_deref(), Some("15.4-SAP"));
        let sles =
            parse("ID=\"sles\"\nVERSION_ID=\"15.4\"\nCPE_NAME=\"cpe:/o:suse:sles:15:sp4\"\n");
        assert_eq!(stream(&sles, []), None);
        // SLES's ESPOS, and SLES for SAP's LTSS (its own product or SLES's).
        assert_eq!(
            stream(&sles, [&product("SLES-ESPOS", "15.4")]).as_deref(),
            Some("15.4-ESPOS")
        );
        assert_eq!(stream(&sles, [&product("SLES-ESPOS", "15.3")]), None);
        for ltss in ["SLES_SAP-LTSS", "SLES-LTSS"] {
            assert_eq!(
                stream(&sap, [&product(ltss, "15.4")]).as_deref(),
                Some("15.4-SAP-LTSS"),
                "{ltss}"
            );
        }
        let sap_12 = parse("ID=\"sles_sap\"\nVERSION_ID=\"12.5\"\n");
        assert_eq!(
            stream(&sap_12, [&product("SLES_SAP-LTSS", "12.5")]).as_deref(),
            Some("12.5-SAP-LTSS")
        );
    }
}
