// Float32 arrays as base64 text: exact (bit-for-bit) and about a quarter the size of a JSON number
// list, so model files, simulation files and training checkpoints stay JSON yet compact.

export function encodeFloat32(values: Float32Array | ArrayLike<number>): string {
  const arr = values instanceof Float32Array ? values : Float32Array.from(values);
  return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).toString('base64');
}

/**
 * Decodes base64 float32 data. Throws (with a message meant to follow "field ... ") when the text
 * is not base64 of whole float32 values or, given `expectedLength`, has another length.
 */
export function decodeFloat32(text: unknown, expectedLength?: number): Float32Array {
  if (typeof text !== 'string') throw new Error('is not a base64 string');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error('is not valid base64');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 4 !== 0)
    throw new Error(`holds ${bytes.length} bytes, not a whole number of float32 values`);
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new Error(`holds ${out.length} values where ${expectedLength} were expected`);
  }
  return out;
}
