//! Media: uploads kept in Baton's object store (bucket `media` of the application's
//! namespace), as the original kept them in a blob container.

use crate::reply::{Input, Outcome, Style, missing};
use crate::store;
use base64::Engine;
use baton_sdk::objects::Bucket;
use serde_json::json;
use socialnet_logic::{classic, fields, ids};

/// The largest upload, decoded.
pub const MAX_MEDIA: usize = 4 << 20;
const BUCKET: &str = "media";

/// Splits `name.ext` into a name of letters, digits, `-` and `_` and an extension of 1 to 8
/// lowercase letters or digits.
fn split_filename(filename: &str) -> Option<(&str, &str)> {
    let (name, ext) = filename.rsplit_once('.')?;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let ext_ok = (1..=8).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (name_ok && ext_ok).then_some((name, ext))
}

/// `media-front-upload-media`: in `filename` (`name.ext`) and `file` (a data URL,
/// `data:<type>;base64,<bytes>`). Out the new `media_id` and its `media_type` (the
/// extension). The original answered a bad data URL in plain text; this answers JSON.
pub fn upload(input: &Input) -> Outcome {
    let m = missing(Style::Message);
    let filename = fields::name(input, "filename", 128).map_err(&m)?;
    let file = fields::string(input, "file", MAX_MEDIA * 4 / 3 + 1024).map_err(&m)?;
    let bad = |message: String| classic::error_message("InputDataError", message);
    let (name, ext) = split_filename(filename).ok_or_else(|| {
        bad(format!(
            "filename {filename:?} must be name.ext: a name of letters, digits, - and _, \
             an extension of 1-8 lowercase letters or digits"
        ))
    })?;
    let encoded = file.split_once(',').map_or(file, |(_, data)| data);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| bad(format!("file is not base64 (or a base64 data URL): {e}")))?;
    if bytes.len() > MAX_MEDIA {
        return Err(bad(format!(
            "file is {} bytes; the limit is {MAX_MEDIA}",
            bytes.len()
        )));
    }
    let media_id = format!("{name}-{}", ids::hex(ids::uuid4(store::random())));
    let key = format!("{media_id}.{ext}");
    let backend = |e: String| classic::error_message("StorageBackendError", e);
    let bucket = Bucket::create(BUCKET).map_err(backend)?;
    if bucket.get(&key).map_err(backend)?.is_some() {
        return Err(classic::error_message(
            "FilenameExistsError",
            format!("{key} already exists"),
        ));
    }
    bucket.put(&key, &bytes).map_err(backend)?;
    Ok(json!({"status": "success", "media_id": media_id, "media_type": ext}))
}

/// The bytes of an uploaded medium (`<media_id>.<media_type>`), if it exists.
pub fn get(filename: &str) -> Result<Option<Vec<u8>>, String> {
    if split_filename(filename).is_none() {
        return Ok(None);
    }
    match Bucket::exists(BUCKET)? {
        true => Bucket::open(BUCKET)?.get(filename),
        false => Ok(None),
    }
}
