//! The deployment package Lambda receives: a zip holding one executable named `bootstrap` (deflate level 6, as
//! `zip` and cargo-lambda write it). Writing a real archive makes the zipped size a fact, not an estimate.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Raw and zipped size of one function's bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PackageSize {
    pub raw_bytes: u64,
    pub zipped_bytes: u64,
}

/// Zips `binary` as `bootstrap` into `zip_path` and returns both sizes.
pub fn package(binary: &Path, zip_path: &Path) -> std::io::Result<PackageSize> {
    let data = std::fs::read(binary)?;
    let archive = zip_single("bootstrap", &data, 0o100_755)?;
    if let Some(dir) = zip_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(zip_path, &archive)?;
    Ok(PackageSize {
        raw_bytes: data.len() as u64,
        zipped_bytes: archive.len() as u64,
    })
}

/// A zip archive with one deflated entry (no zip64: Lambda packages are far below 4 GiB).
pub fn zip_single(name: &str, data: &[u8], unix_mode: u32) -> std::io::Result<Vec<u8>> {
    let too_big = || std::io::Error::other("entry too large for a zip without zip64");
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(data)?;
    let compressed = encoder.finish()?;
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let crc = crc.sum();
    let csize = u32::try_from(compressed.len()).map_err(|_| too_big())?;
    let usize_ = u32::try_from(data.len()).map_err(|_| too_big())?;
    let name_len = u16::try_from(name.len()).map_err(|_| too_big())?;
    // 1980-01-01 00:00, the zip epoch: reproducible archives.
    let (time, date) = (0u16, (1u16 << 5) | 1);

    let mut out = Vec::with_capacity(compressed.len() + 128);
    let local_offset = 0u32;
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // version needed
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.extend_from_slice(&8u16.to_le_bytes()); // deflate
    out.extend_from_slice(&time.to_le_bytes());
    out.extend_from_slice(&date.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&csize.to_le_bytes());
    out.extend_from_slice(&usize_.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // extra
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&compressed);

    let cd_offset = u32::try_from(out.len()).map_err(|_| too_big())?;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by: unix, 2.0
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&time.to_le_bytes());
    out.extend_from_slice(&date.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&csize.to_le_bytes());
    out.extend_from_slice(&usize_.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // extra
    out.extend_from_slice(&0u16.to_le_bytes()); // comment
    out.extend_from_slice(&0u16.to_le_bytes()); // disk
    out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    out.extend_from_slice(&(unix_mode << 16).to_le_bytes());
    out.extend_from_slice(&local_offset.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    let cd_size = u32::try_from(out.len()).map_err(|_| too_big())? - cd_offset;

    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_is_a_valid_zip_that_round_trips() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let zip = zip_single("bootstrap", &data, 0o100_755).unwrap();
        assert!(zip.len() < data.len());
        assert_eq!(&zip[..4], b"PK\x03\x04");
        assert_eq!(&zip[zip.len() - 22..zip.len() - 18], b"PK\x05\x06");
        // The stored entry inflates back to the input.
        let name_len = u16::from_le_bytes([zip[26], zip[27]]) as usize;
        let csize = u32::from_le_bytes([zip[18], zip[19], zip[20], zip[21]]) as usize;
        let start = 30 + name_len;
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::DeflateDecoder::new(&zip[start..start + csize]),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, data);
    }
}
