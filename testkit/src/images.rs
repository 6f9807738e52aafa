//! Uploads built in code: images in each format, an EXIF block written by
//! hand, PNG headers that claim what they like, and readers of the markers
//! and chunks an output holds.

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, Frame, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

pub const RED: Rgb<u8> = Rgb([230, 20, 20]);
pub const BLUE: Rgb<u8> = Rgb([20, 20, 230]);

/// A landscape 200×100, blue, with a red block over columns 50..150 of the
/// top half: stored this way, a camera held upright would mark it with
/// orientation 6 (turn 90° clockwise to show it). Shown upright it is 100×200,
/// its centred square is the stored columns 50..150, and the red block is
/// that square's right half; ignoring the orientation would put it in the
/// top half instead, and turning the wrong way in the left half.
pub fn sideways_photo() -> RgbImage {
    RgbImage::from_fn(200, 100, |x, y| {
        if (50..150).contains(&x) && y < 50 {
            RED
        } else {
            BLUE
        }
    })
}

/// A little-endian TIFF block as a JPEG's APP1 carries it after `Exif\0\0`:
/// IFD0 with the orientation and a pointer to a GPS IFD holding a latitude.
pub fn exif_with_orientation_and_gps(orientation: u16) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value);
    }
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const ASCII: u16 = 2;
    const RATIONAL: u16 = 5;
    // Header (8) + IFD0 (2 + 2 entries + 4 = 30) = 38; the GPS IFD is 30
    // more, then its latitude's three rationals.
    let gps_ifd: u32 = 38;
    let latitude: u32 = 68;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    let [o0, o1] = orientation.to_le_bytes();
    entry(&mut out, 0x0112, SHORT, 1, [o0, o1, 0, 0]);
    entry(&mut out, 0x8825, LONG, 1, gps_ifd.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut out, 0x0001, ASCII, 2, *b"N\0\0\0");
    entry(&mut out, 0x0002, RATIONAL, 3, latitude.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (numerator, denominator) in [(52u32, 1u32), (31, 1), (1234, 100)] {
        out.extend_from_slice(&numerator.to_le_bytes());
        out.extend_from_slice(&denominator.to_le_bytes());
    }
    out
}

pub fn jpeg(image: &RgbImage, exif: Option<Vec<u8>>, icc: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 95);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif).unwrap();
    }
    if let Some(icc) = icc {
        encoder.set_icc_profile(icc).unwrap();
    }
    write(encoder, &DynamicImage::ImageRgb8(image.clone()));
    out
}

pub fn png(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    write(PngEncoder::new(&mut out), image);
    out
}

/// Lossless: `image` encodes no lossy WebP.
pub fn webp(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    write(WebPEncoder::new_lossless(&mut out), image);
    out
}

fn write(encoder: impl ImageEncoder, image: &DynamicImage) {
    encoder
        .write_image(
            image.as_bytes(),
            image.width(),
            image.height(),
            image.color().into(),
        )
        .unwrap();
}

/// An animation whose frames are each one colour, in this order.
pub fn gif(width: u32, height: u32, colours: &[Rgba<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        let frames = colours
            .iter()
            .map(|c| Frame::new(RgbaImage::from_pixel(width, height, *c)));
        encoder.encode_frames(frames).unwrap();
    }
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(kind);
    hasher.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
}

/// A PNG whose header claims `width` × `height` 8-bit RGBA pixels, followed
/// by image data that is no zlib stream at all: whatever tries to decode a
/// pixel of it fails as corrupt.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &header);
    png_chunk(&mut out, b"IDAT", b"these are not pixels");
    png_chunk(&mut out, b"IEND", b"");
    out
}

/// The markers of a JPEG's segments up to the start of its scan.
pub fn jpeg_markers(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..2], b"\xff\xd8", "not a JPEG");
    let mut markers = Vec::new();
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xff {
        let marker = bytes[at + 1];
        markers.push(marker);
        if marker == 0xda {
            break;
        }
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
    markers
}

/// The types of a PNG's chunks, in order.
pub fn png_chunks(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut chunks = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        chunks.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += 12 + usize::try_from(length).unwrap();
    }
    chunks
}
