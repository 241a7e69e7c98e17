// Types for the parts of fuse-native 2.2.6 that Ferry uses (the package ships none). Only src/fuse/ imports it.
declare module 'fuse-native' {
  export interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    dev?: number;
    nlink: number;
    ino: number;
    rdev: number;
    blksize: number;
    blocks: number;
    atime: Date | number;
    mtime: Date | number;
    ctime: Date | number;
  }

  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  export interface FuseOps {
    init?(cb: (err: number) => void): void;
    getattr?(path: string, cb: (err: number, stat?: FuseStat) => void): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    open?(path: string, flags: number, cb: (err: number, fh?: number) => void): void;
    opendir?(path: string, flags: number, cb: (err: number, fh?: number) => void): void;
    read?(
      path: string,
      fh: number,
      buf: Buffer,
      len: number,
      pos: number,
      cb: (result: number) => void,
    ): void;
    release?(path: string, fh: number, cb: (err: number) => void): void;
    releasedir?(path: string, fh: number, cb: (err: number) => void): void;
    getxattr?(
      path: string,
      name: string,
      position: number,
      cb: (err: number, value?: Buffer | null) => void,
    ): void;
    listxattr?(path: string, cb: (err: number, names?: string[]) => void): void;
    statfs?(path: string, cb: (err: number, statfs?: FuseStatfs) => void): void;
    access?(path: string, mode: number, cb: (err: number) => void): void;
  }

  export interface FuseOptions {
    debug?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    defaultPermissions?: boolean;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    force?: boolean;
    mkdir?: boolean;
    timeout?: false | number | Record<string, number | false>;
  }

  class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    readonly mnt: string;
    readonly opts: FuseOptions;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    protected _fuseOptions(): string;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }

  export default Fuse;
}
