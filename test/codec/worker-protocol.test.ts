// replyView: a decode worker sends a decoded chunk without copying it when the view fills most of its own
// ArrayBuffer, and copies it when sending the buffer would hand over much else (or a slice of Node's pool).
import { describe, expect, it } from 'vitest';
import { replyView } from '../../src/codec/worker-protocol.js';

describe('replyView', () => {
  it('sends zlib-style output (a view at the start of a buffer with a little slack) as it is', () => {
    const out = Buffer.allocUnsafeSlow(1024 * 1024 + 64 * 1024);
    out.fill(7);
    const view = out.subarray(100, 1024 * 1024);
    const r = replyView(view);
    expect(r.view).toBe(view);
    expect(r.buffer).toBe(out.buffer);
    expect(r.view.byteOffset).toBe(100);
  });

  it('copies a view that is a small share of its buffer', () => {
    const out = Buffer.allocUnsafeSlow(1024 * 1024);
    out.fill(3);
    const view = out.subarray(0, 128 * 1024);
    const r = replyView(view);
    expect(r.buffer).not.toBe(out.buffer);
    expect(r.buffer.byteLength).toBe(128 * 1024);
    expect(Buffer.from(r.view).equals(view)).toBe(true);
  });

  it("copies a slice of Node's shared Buffer pool even when it fills the slice", () => {
    const small = Buffer.from('abc');
    const r = replyView(small);
    expect(r.buffer).not.toBe(small.buffer);
    expect(Buffer.from(r.view).toString()).toBe('abc');
  });
});
