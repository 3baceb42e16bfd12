// The External Term Format codec: term model, decoder, encoder.
export * from './terms.js'
export * from './tags.js'
export * from './errors.js'
export { Reader } from './reader.js'
export { Writer } from './writer.js'
export {
  decodeTerm,
  decodeVersioned,
  binaryToTerm,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_ATOM_LENGTH,
  DEFAULT_MAX_UNCOMPRESSED_SIZE,
  DEFAULT_COPY_THRESHOLD,
  type DecodeOptions,
} from './decode.js'
export { encodeTerm, termToBinary, termToChunks, type EncodeOptions } from './encode.js'
