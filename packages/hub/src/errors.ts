// The one error the Hub package throws for anything a user can act on: its message is one line
// (a bad id, a gated repo, a missing file, a full disk, a checksum mismatch, a cold offline cache).
export class HubError extends Error {
  override name = "HubError";
}
