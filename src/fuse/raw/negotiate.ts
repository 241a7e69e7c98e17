// The INIT answer: which protocol minor and features Ferry asks of the kernel for a read-only layer, and why.
import {
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  InitFlag,
  MAX_PAGES,
  MAX_WRITE_BYTES,
  type InitIn,
} from './protocol.js';
import { encodeInitOut } from './protocol-replies.js';

export const DEFAULT_MAX_READAHEAD_BYTES = 1024 * 1024;

/**
 * Features we want, each only if the kernel offers it:
 * - ASYNC_READ: several READs of one file in flight (chunk fetches overlap).
 * - MAX_PAGES: READs up to 1 MiB instead of 128 KiB (one chunk per request).
 * - DO_READDIRPLUS + READDIRPLUS_AUTO: `ls -l` and overlay's merge get attributes with the names.
 * - PARALLEL_DIROPS: lookups and listings of one directory need not serialise (the tree is immutable).
 * - CACHE_SYMLINKS: link targets stay in the page cache.
 * Not asked: writeback/splice/locks (read-only), POSIX_ACL (no ACL xattrs are synthesised), EXPORT_SUPPORT
 * (would need LOOKUP of "." and ".."), AUTO_INVAL_DATA (contents never change).
 */
const WANTED =
  InitFlag.ASYNC_READ |
  InitFlag.MAX_PAGES |
  InitFlag.DO_READDIRPLUS |
  InitFlag.READDIRPLUS_AUTO |
  InitFlag.PARALLEL_DIROPS |
  InitFlag.CACHE_SYMLINKS;

/** The fuse_init_out body answering `init` (a major above 7 gets ours and re-sends INIT, as libfuse does). */
export function initReply(init: InitIn, maxReadaheadBytes = DEFAULT_MAX_READAHEAD_BYTES): Buffer {
  if (init.major > FUSE_KERNEL_VERSION) {
    // The kernel then re-sends INIT with our major: only major/minor count in this reply.
    return encodeInitOut({
      major: FUSE_KERNEL_VERSION,
      minor: FUSE_KERNEL_MINOR_VERSION,
      maxReadaheadBytes: 0,
      flags: 0,
      maxBackground: 0,
      congestionThreshold: 0,
      maxWriteBytes: 0,
      timeGranNs: 0,
      maxPages: 0,
    });
  }
  return encodeInitOut({
    major: FUSE_KERNEL_VERSION,
    minor: FUSE_KERNEL_MINOR_VERSION,
    // Not capped by the kernel's offer (its bdi default, 128 KiB): the kernel takes the smaller of its current
    // bdi setting and this, so answering ours lets setReadAhead() raise the bdi before or after INIT.
    maxReadaheadBytes,
    flags: (WANTED & init.flags) >>> 0,
    // The kernel's own defaults: asynchronous (read-ahead) READs in flight at once. Each holds chunk fetches
    // and their buffers, and Ferry's own read-ahead already fetches ahead of a sequential reader.
    maxBackground: 12,
    congestionThreshold: 9,
    maxWriteBytes: MAX_WRITE_BYTES,
    timeGranNs: 1,
    maxPages: MAX_PAGES,
  });
}
