//! Writes one `.eml` file per message into a directory.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{DispatchError, MailDispatcher, OutgoingMail};

pub struct FileDispatcher {
    dir: PathBuf,
}

impl FileDispatcher {
    /// Creates `dir` if needed.
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(FileDispatcher { dir })
    }
}

#[async_trait]
impl MailDispatcher for FileDispatcher {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DispatchError> {
        let outbox_id = mail.outbox_id;
        // Written under a temporary name and renamed, so a reader never sees
        // half a message; named after the outbox row, so a retry replaces it.
        let tmp = self.dir.join(format!(".{outbox_id}.eml.tmp"));
        let path = self.dir.join(format!("{outbox_id}.eml"));
        tokio::fs::write(&tmp, mail.message.formatted())
            .await
            .map_err(|e| DispatchError::Transient(e.into()))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| DispatchError::Transient(e.into()))
    }
}
