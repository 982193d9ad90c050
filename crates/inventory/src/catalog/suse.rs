//! SUSE's installed products: whether a SLES root is on Long Term Service Pack Support.
//!
//! Every registered SUSE product installs its product file into `etc/products.d/`
//! (`SLES.prod`, and `SLES-LTSS.prod` from `sles-ltss-release` once `SUSEConnect -p
//! SLES-LTSS/15.4/x86_64` activated the LTSS extension), an XML document naming the product
//! and its version (`<name>SLES-LTSS</name>`, `<version>15.4</version>`). SUSE's migration
//! tools read the same file to tell an LTSS system (which must drop LTSS before migrating).
//! An LTSS system's packages are matched against the LTSS stream's advisories besides its
//! service pack's (`SUSE:15.4-LTSS`).

use crate::catalog::os_release::Distro;

/// The product file of SLES's LTSS extension names this product.
const LTSS_PRODUCT: &str = "SLES-LTSS";

/// An installed product, from its product file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product {
    /// `<name>`: `SLES`, `SLES-LTSS`, `sle-module-basesystem`, ...
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

/// The LTSS stream of a SLES root (`15.4-LTSS`), when one of `products` is the LTSS
/// extension of the release `os-release` names; `None` otherwise, and for other
/// distributions. A product file left from another release (the version differs) does not
/// count.
pub(crate) fn stream<'a>(
    distro: &Distro,
    products: impl IntoIterator<Item = &'a Product>,
) -> Option<String> {
    if distro.id != "sles" {
        return None;
    }
    let release = distro.version_id.as_deref()?;
    products
        .into_iter()
        .any(|product| {
            product.name == LTSS_PRODUCT
                && product
                    .version
                    .as_deref()
                    .is_none_or(|version| version == release)
        })
        .then(|| format!("{release}-LTSS"))
}

#[cfg(test)]
mod tests {
    use super::{Product, parse_product, stream};
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
}
