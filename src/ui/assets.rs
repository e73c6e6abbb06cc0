//! The UI's static files, embedded in the binary (no CDN, nothing read from disk at run time).
//!
//! Each is served at `{base}/assets/{stem}.{hash}.{ext}`, the hash being the first 12 hex digits of
//! its SHA-256: a changed file gets a new name, so every answer can be cached for a year
//! (`immutable`). Answers are gzipped when the browser accepts it (the middleware's `Compress`).

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// One embedded file.
pub struct Asset {
    /// The name pages link to: `app.3f2a9c0b1d4e.js`.
    pub name: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// The files, in the order [`Assets`] names them.
const FILES: [(&str, &str, &[u8]); 5] = [
    ("app", "css", include_bytes!("../../assets/app.css")),
    ("app", "js", include_bytes!("../../assets/app.js")),
    (
        "htmx",
        "js",
        include_bytes!("../../assets/vendor/htmx.min.js"),
    ),
    (
        "uplot",
        "js",
        include_bytes!("../../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uplot",
        "css",
        include_bytes!("../../assets/vendor/uPlot.min.css"),
    ),
];

/// Every embedded asset.
pub static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(stem, ext, bytes)| {
            let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
            let hash: String = digest.as_ref()[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Asset {
                name: format!("{stem}.{hash}.{ext}"),
                content_type: match ext {
                    "css" => "text/css; charset=utf-8",
                    _ => "text/javascript; charset=utf-8",
                },
                bytes,
            }
        })
        .collect()
});

/// The hashed names pages link to.
pub struct Names {
    pub app_css: &'static str,
    pub app_js: &'static str,
    pub htmx_js: &'static str,
    pub uplot_js: &'static str,
    pub uplot_css: &'static str,
}

/// The names of [`ASSETS`], by role.
pub fn names() -> Names {
    let name = |i: usize| ASSETS[i].name.as_str();
    Names {
        app_css: name(0),
        app_js: name(1),
        htmx_js: name(2),
        uplot_js: name(3),
        uplot_css: name(4),
    }
}

/// `GET {base}/assets/{name}`: the asset of that exact (hashed) name, else 404.
pub async fn serve(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == *name) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_content_hash_and_are_distinct() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name.as_str()).collect();
        for name in &names {
            let parts: Vec<&str> = name.split('.').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert_eq!(parts[1].len(), 12, "{name}");
            assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
