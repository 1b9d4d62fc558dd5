//! The script-mode source archive (`sourcedir.tar.gz`) built in memory from files read at a commit:
//! deterministic (sorted entries, fixed times and owners), so the same commit always gives the same bytes.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// One file to package, with its path inside the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub bytes: Vec<u8>,
    pub executable: bool,
}

/// A gzip-compressed tar of `files` (paths relative to the archive root, as script mode unpacks them).
pub fn tar_gz(files: &[SourceFile]) -> std::io::Result<Vec<u8>> {
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for f in sorted {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.bytes.len() as u64);
        header.set_mode(if f.executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &f.path, f.bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn file(path: &str, text: &str, executable: bool) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
            executable,
        }
    }

    #[test]
    fn archive_round_trips_and_is_deterministic() {
        let long = format!("{}/deep.py", "d".repeat(120));
        let files = vec![
            file("train.py", "print('hi')\n", false),
            file("lib/util.py", "X = 1\n", false),
            file("run.sh", "#!/bin/sh\n", true),
            file(&long, "", false),
        ];
        let a = tar_gz(&files).unwrap();
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(a, tar_gz(&reversed).unwrap(), "order must not matter");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(a.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut e = entry.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            seen.push((path, mode, body));
        }
        assert_eq!(
            seen,
            vec![
                (long, 0o644, String::new()),
                ("lib/util.py".into(), 0o644, "X = 1\n".into()),
                ("run.sh".into(), 0o755, "#!/bin/sh\n".into()),
                ("train.py".into(), 0o644, "print('hi')\n".into()),
            ]
        );
    }
}
