//! Files built into the binary: the page (HTML, JS, CSS) and the gallery of public-domain
//! example images from `assets/` (see assets/LICENSES.md).

/// One gallery image.
pub struct GalleryImage {
    /// Its id in the API (`content_gallery=ID`, `style_gallery=ID`, `/api/gallery/ID`).
    pub id: &'static str,
    pub title: &'static str,
    pub credit: &'static str,
    /// "content" or "style": where the page offers it (the API takes any image in either role).
    pub role: &'static str,
    pub mime: &'static str,
    pub bytes: &'static [u8],
}

/// The gallery, content images first.
pub const GALLERY: &[GalleryImage] = &[
    GalleryImage {
        id: "chelsea",
        title: "Chelsea the cat",
        credit: "Stefan van der Walt, scikit-image data (CC0)",
        role: "content",
        mime: "image/png",
        bytes: include_bytes!("../../assets/chelsea.png"),
    },
    GalleryImage {
        id: "starry_night",
        title: "The Starry Night",
        credit: "Vincent van Gogh, 1889 (public domain)",
        role: "style",
        mime: "image/jpeg",
        bytes: include_bytes!("../../assets/starry_night.jpg"),
    },
    GalleryImage {
        id: "the_scream",
        title: "The Scream",
        credit: "Edvard Munch, 1893 (public domain)",
        role: "style",
        mime: "image/jpeg",
        bytes: include_bytes!("../../assets/the_scream.jpg"),
    },
    GalleryImage {
        id: "shipwreck",
        title: "The Shipwreck",
        credit: "J. M. W. Turner, 1805 (public domain)",
        role: "style",
        mime: "image/jpeg",
        bytes: include_bytes!("../../assets/shipwreck.jpg"),
    },
];

/// The gallery image with this id.
pub fn gallery(id: &str) -> Option<&'static GalleryImage> {
    GALLERY.iter().find(|g| g.id == id)
}

/// The page's files by URL path: (content type, bytes).
pub fn static_file(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "/" | "/index.html" => (
            "text/html; charset=utf-8",
            include_str!("static/index.html").as_bytes(),
        ),
        "/app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("static/app.js").as_bytes(),
        ),
        "/style.css" => (
            "text/css; charset=utf-8",
            include_str!("static/style.css").as_bytes(),
        ),
        "/favicon.svg" => (
            "image/svg+xml",
            include_str!("static/favicon.svg").as_bytes(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_images_decode_and_match_their_type() {
        for g in GALLERY {
            let format = image::guess_format(g.bytes).unwrap();
            assert_eq!(format.to_mime_type(), g.mime, "{}", g.id);
        }
        assert!(gallery("chelsea").is_some());
        assert!(gallery("../chelsea").is_none());
    }
}
