//! Builders for crafted tar layers and images: raw headers, so hostile names that tar
//! libraries refuse to write can be written.

use std::io::Write;
use std::path::Path;

/// One tar entry: name, type flag (`b'0'` file, `b'5'` dir, `b'2'` symlink, `b'1'` hard
/// link, `b'3'` char device), content, link target.
pub struct Entry<'a> {
    pub name: &'a str,
    pub kind: u8,
    pub content: &'a [u8],
    pub link: &'a str,
}

pub fn file<'a>(name: &'a str, content: &'a [u8]) -> Entry<'a> {
    Entry {
        name,
        kind: b'0',
        content,
        link: "",
    }
}

pub fn dir(name: &str) -> Entry<'_> {
    Entry {
        name,
        kind: b'5',
        content: b"",
        link: "",
    }
}

pub fn symlink<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
    Entry {
        name,
        kind: b'2',
        content: b"",
        link: target,
    }
}

pub fn hardlink<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
    Entry {
        name,
        kind: b'1',
        content: b"",
        link: target,
    }
}

pub fn device(name: &str) -> Entry<'_> {
    Entry {
        name,
        kind: b'3',
        content: b"",
        link: "",
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{:0width$o}", value, width = field.len() - 1);
    field[..text.len()].copy_from_slice(text.as_bytes());
}

/// A ustar archive of the entries (names up to 100 bytes), with the end-of-archive blocks.
pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = [0u8; 512];
        header[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        octal(&mut header[100..108], 0o755);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], entry.content.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = entry.kind;
        header[157..157 + entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let checksum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        let text = format!("{checksum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(entry.content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Writes an OCI layout directory with the given layer blobs (already compressed or not)
/// and their uncompressed tars (for the diff ids).
pub fn oci_layout(dir: &Path, layers: &[(Vec<u8>, Vec<u8>)]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        digest
    };
    let diff_ids: Vec<String> = layers.iter().map(|(_, tar)| sha256(tar)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    })
    .to_string();
    let config_digest = put(config.as_bytes());
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(blob, _)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": put(blob), "size": blob.len()
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": layer_descriptors
    })
    .to_string();
    let manifest_digest = put(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "crafted"}}]
    })
    .to_string();
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Writes a `docker save` archive with uncompressed layers.
pub fn docker_archive(path: &Path, layers: &[Vec<u8>]) {
    let diff_ids: Vec<String> = layers.iter().map(|tar| sha256(tar)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    })
    .to_string();
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": ["crafted:latest"], "Layers": names
    }])
    .to_string();
    let mut entries = vec![
        file("manifest.json", manifest.as_bytes()),
        file("config.json", config.as_bytes()),
    ];
    for (name, layer) in names.iter().zip(layers) {
        entries.push(file(name, layer));
    }
    std::fs::write(path, tar(&entries)).unwrap();
}
