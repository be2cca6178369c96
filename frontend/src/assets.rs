//! Static files compiled into the binary (the image holds nothing beside it).
//!
//! Each is served at a URL that contains a hash of its content (`/static/app.<hash>.css`), so it
//! can be cached for a year (`immutable`): a changed file gets a new URL, and pages always point
//! at the current one.

/// A file served from memory.
#[derive(Debug)]
pub struct Asset {
    stem: &'static str,
    extension: &'static str,
    /// The bytes.
    pub body: &'static [u8],
    /// The `Content-Type` header.
    pub content_type: &'static str,
    hash: u64,
}

impl Asset {
    const fn new(stem: &'static str, extension: &'static str, body: &'static [u8], content_type: &'static str) -> Self {
        Self {
            stem,
            extension,
            body,
            content_type,
            hash: fnv1a(body),
        }
    }

    /// The file name with the content hash, e.g. `app.1a2b3c4d5e6f7a8b.css`.
    pub fn file_name(&self) -> String {
        format!("{}.{:016x}.{}", self.stem, self.hash, self.extension)
    }

    /// The URL pages use.
    pub fn url(&self) -> String {
        format!("/static/{}", self.file_name())
    }
}

/// The hand-written stylesheet.
pub static STYLESHEET: Asset = Asset::new(
    "app",
    "css",
    include_bytes!("../static/app.css"),
    "text/css; charset=utf-8",
);

/// htmx 2 (vendored from the `htmx.org` npm package; 0BSD, license in `static/htmx.LICENSE`).
pub static HTMX: Asset = Asset::new(
    "htmx-2.0.11",
    "min.js",
    include_bytes!("../static/htmx-2.0.11.min.js"),
    "text/javascript; charset=utf-8",
);

/// The tab icon.
pub static ICON: Asset = Asset::new("icon", "svg", include_bytes!("../static/icon.svg"), "image/svg+xml");

/// Every asset.
pub static ALL: [&Asset; 3] = [&STYLESHEET, &HTMX, &ICON];

/// The asset with this hashed file name, if any (old hashes are not found).
pub fn find(file_name: &str) -> Option<&'static Asset> {
    ALL.into_iter().find(|asset| asset.file_name() == file_name)
}

/// 64-bit FNV-1a: tiny, `const`, and plenty to tell versions of a file apart (not a security hash).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash_and_are_found_again() {
        for asset in ALL {
            let name = asset.file_name();
            assert!(name.contains(&format!("{:016x}", fnv1a(asset.body))), "{name}");
            assert!(std::ptr::eq(find(&name).unwrap(), asset));
        }
        assert!(find("app.0000000000000000.css").is_none());
    }

    #[test]
    fn htmx_keeps_its_license_header() {
        let head = std::str::from_utf8(&HTMX.body[..200]).unwrap();
        assert!(head.starts_with("/*! htmx.org 2.0.11"), "{head}");
        assert!(head.contains("0BSD"));
    }
}
