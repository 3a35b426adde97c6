//! Changing a share's options while it serves ([`Fs::set_options`]).
//!
//! Layering: this module sits above the recycle bin's administration (`trash`), because
//! turning the bin off empties it; `fs` (below every operation) installs options but
//! never calls into `trash`. Invariant: options are validated and compiled before
//! anything changes, and the bin is emptied only after the new options are in force
//! (no new item can enter it meanwhile: REMOVE reads the options in force).

use crate::error::FsResult;
use crate::fs::{Fs, Live, ShareOptions};

impl Fs {
    /// Replaces the options while serving. Validates first (chunker sizes, exclude globs:
    /// [`crate::FsError::InvalidArgument`], nothing changes); then read-only, chunking
    /// (new flushes) and the recycle-bin policy take effect at once. Turning the bin off
    /// empties it permanently and removes `#recycle`. `root_mode` is kept as given but
    /// only matters when a share is created.
    pub async fn set_options(&self, opts: ShareOptions) -> FsResult<()> {
        let _admin = self.trash_admin.lock().await;
        let live = Live::build(self.name(), opts)?;
        let was_enabled = self.options().trash.enabled;
        let disable = was_enabled && !live.opts.trash.enabled;
        self.install_live(live);
        if disable {
            self.empty_bin_locked(true).await?;
        }
        Ok(())
    }
}
