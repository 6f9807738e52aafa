use super::*;

#[test]
fn an_upload_is_the_account_then_the_file_in_chunks_under_the_message_limit() {
    let file: Vec<u8> = (0..150_001u32).map(|i| i as u8).collect();
    let messages = upload_messages("0190e2a4-8f1e-7cc1-b2b4-6a0d4d1e9f00", &file);

    let parts: Vec<Part> = messages.into_iter().map(|m| m.part.unwrap()).collect();
    assert_eq!(
        parts[0],
        Part::AccountId("0190e2a4-8f1e-7cc1-b2b4-6a0d4d1e9f00".into())
    );
    let chunks: Vec<Vec<u8>> = parts[1..]
        .iter()
        .map(|p| match p {
            Part::Chunk(c) => c.clone(),
            other => panic!("a chunk expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [60_000, 60_000, 30_001]
    );
    assert_eq!(chunks.concat(), file);
}

#[test]
fn a_made_jpeg_decodes_at_its_size_and_is_repeatable() {
    let dir = std::env::temp_dir().join(format!(
        "account-loadgen-jpeg-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (dir.join("a.jpg"), dir.join("b.jpg"));
    let size = make_jpeg(300, 200, 90, 8, first.to_str().unwrap()).unwrap();
    make_jpeg(300, 200, 90, 8, second.to_str().unwrap()).unwrap();

    let bytes = std::fs::read(&first).unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(bytes, std::fs::read(&second).unwrap());
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (300, 200));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn more_noise_makes_a_larger_file() {
    let encoded = |noise| {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(
                photo(200, 200, noise).as_raw(),
                200,
                200,
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out.len()
    };
    assert!(encoded(40) > 2 * encoded(0));
}
