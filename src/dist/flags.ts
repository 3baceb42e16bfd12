// Distribution capability flags: OTP erts "Distribution Protocol", section "Distribution Flags"
// (values as in kernel's dist.hrl and erts' dist.h). 64-bit, so bigint: JS bitwise operators stop at 32 bits.

export const DFLAG_PUBLISHED = 0x1n
export const DFLAG_ATOM_CACHE = 0x2n
export const DFLAG_EXTENDED_REFERENCES = 0x4n
export const DFLAG_DIST_MONITOR = 0x8n
export const DFLAG_FUN_TAGS = 0x10n
export const DFLAG_DIST_MONITOR_NAME = 0x20n
export const DFLAG_HIDDEN_ATOM_CACHE = 0x40n
export const DFLAG_NEW_FUN_TAGS = 0x80n
export const DFLAG_EXTENDED_PIDS_PORTS = 0x100n
export const DFLAG_EXPORT_PTR_TAG = 0x200n
export const DFLAG_BIT_BINARIES = 0x400n
export const DFLAG_NEW_FLOATS = 0x800n
export const DFLAG_UNICODE_IO = 0x1000n
export const DFLAG_DIST_HDR_ATOM_CACHE = 0x2000n
export const DFLAG_SMALL_ATOM_TAGS = 0x4000n
export const DFLAG_UTF8_ATOMS = 0x10000n
export const DFLAG_MAP_TAG = 0x20000n
export const DFLAG_BIG_CREATION = 0x40000n
export const DFLAG_SEND_SENDER = 0x80000n
export const DFLAG_BIG_SEQTRACE_LABELS = 0x100000n
export const DFLAG_EXIT_PAYLOAD = 0x400000n
export const DFLAG_FRAGMENTS = 0x800000n
export const DFLAG_HANDSHAKE_23 = 0x1000000n
export const DFLAG_UNLINK_ID = 0x2000000n
/** The emulator's value (dist.hrl); the documentation's `1 bsl 36` is wrong (bit 36 is the internal LOCAL_EXT). */
export const DFLAG_MANDATORY_25_DIGEST = 0x4000000n
export const DFLAG_SPAWN = 1n << 32n
export const DFLAG_NAME_ME = 1n << 33n
export const DFLAG_V4_NC = 1n << 34n
export const DFLAG_ALIAS = 1n << 35n
export const DFLAG_ALTACT_SIG = 1n << 37n

/** Flags every OTP 25+ node requires of its peer (dist.hrl MANDATORY_DFLAGS_25 = 0x1070F94). */
export const MANDATORY_25 =
  DFLAG_EXTENDED_REFERENCES |
  DFLAG_FUN_TAGS |
  DFLAG_EXTENDED_PIDS_PORTS |
  DFLAG_NEW_FUN_TAGS |
  DFLAG_EXPORT_PTR_TAG |
  DFLAG_BIT_BINARIES |
  DFLAG_NEW_FLOATS |
  DFLAG_UTF8_ATOMS |
  DFLAG_MAP_TAG |
  DFLAG_BIG_CREATION |
  DFLAG_HANDSHAKE_23

/** Added to the mandatory set by OTP 26. */
export const MANDATORY_26 = MANDATORY_25 | DFLAG_UNLINK_ID | DFLAG_V4_NC

/**
 * What this node offers: the OTP 26 mandatory set plus the optional features it implements, except
 * DFLAG_FRAGMENTS, which is offered on request (DistManagerOptions.fragments): unfragmented, a large message
 * is read straight into one buffer, and a 1 MB echo costs this node a third less CPU (see the README).
 */
export const DEFAULT_FLAGS =
  MANDATORY_26 |
  DFLAG_DIST_MONITOR |
  DFLAG_DIST_MONITOR_NAME |
  DFLAG_SEND_SENDER |
  DFLAG_EXIT_PAYLOAD |
  DFLAG_DIST_HDR_ATOM_CACHE |
  DFLAG_SPAWN |
  DFLAG_ALIAS |
  DFLAG_BIG_SEQTRACE_LABELS

/** What a peer must offer for this node to talk to it (checked in both roles). */
export const REQUIRED_FLAGS = MANDATORY_25

/** Flags a peer sends as they are, but with MANDATORY_25_DIGEST standing for the whole OTP 25 set (dist_util). */
export function expandFlags(flags: bigint): bigint {
  return (flags & DFLAG_MANDATORY_25_DIGEST) !== 0n ? flags | MANDATORY_25 : flags
}

export const hasFlag = (flags: bigint, flag: bigint): boolean => (flags & flag) === flag

const NAMES: ReadonlyArray<readonly [bigint, string]> = [
  [DFLAG_PUBLISHED, 'PUBLISHED'],
  [DFLAG_ATOM_CACHE, 'ATOM_CACHE'],
  [DFLAG_EXTENDED_REFERENCES, 'EXTENDED_REFERENCES'],
  [DFLAG_DIST_MONITOR, 'DIST_MONITOR'],
  [DFLAG_FUN_TAGS, 'FUN_TAGS'],
  [DFLAG_DIST_MONITOR_NAME, 'DIST_MONITOR_NAME'],
  [DFLAG_HIDDEN_ATOM_CACHE, 'HIDDEN_ATOM_CACHE'],
  [DFLAG_NEW_FUN_TAGS, 'NEW_FUN_TAGS'],
  [DFLAG_EXTENDED_PIDS_PORTS, 'EXTENDED_PIDS_PORTS'],
  [DFLAG_EXPORT_PTR_TAG, 'EXPORT_PTR_TAG'],
  [DFLAG_BIT_BINARIES, 'BIT_BINARIES'],
  [DFLAG_NEW_FLOATS, 'NEW_FLOATS'],
  [DFLAG_UNICODE_IO, 'UNICODE_IO'],
  [DFLAG_DIST_HDR_ATOM_CACHE, 'DIST_HDR_ATOM_CACHE'],
  [DFLAG_SMALL_ATOM_TAGS, 'SMALL_ATOM_TAGS'],
  [DFLAG_UTF8_ATOMS, 'UTF8_ATOMS'],
  [DFLAG_MAP_TAG, 'MAP_TAG'],
  [DFLAG_BIG_CREATION, 'BIG_CREATION'],
  [DFLAG_SEND_SENDER, 'SEND_SENDER'],
  [DFLAG_BIG_SEQTRACE_LABELS, 'BIG_SEQTRACE_LABELS'],
  [DFLAG_EXIT_PAYLOAD, 'EXIT_PAYLOAD'],
  [DFLAG_FRAGMENTS, 'FRAGMENTS'],
  [DFLAG_HANDSHAKE_23, 'HANDSHAKE_23'],
  [DFLAG_UNLINK_ID, 'UNLINK_ID'],
  [DFLAG_MANDATORY_25_DIGEST, 'MANDATORY_25_DIGEST'],
  [DFLAG_SPAWN, 'SPAWN'],
  [DFLAG_NAME_ME, 'NAME_ME'],
  [DFLAG_V4_NC, 'V4_NC'],
  [DFLAG_ALIAS, 'ALIAS'],
  [DFLAG_ALTACT_SIG, 'ALTACT_SIG'],
]

/** The spec names of the flags set in `flags` (unknown bits as hex), for logs and errors. */
export function flagNames(flags: bigint): string[] {
  const out: string[] = []
  let rest = flags
  for (const [bit, name] of NAMES)
    if ((flags & bit) !== 0n) {
      out.push(name)
      rest &= ~bit
    }
  for (let b = 0n; rest !== 0n; b++)
    if ((rest & (1n << b)) !== 0n) {
      out.push(`0x${(1n << b).toString(16)}`)
      rest &= ~(1n << b)
    }
  return out
}

/** Names of the flags in `required` that `offered` lacks (empty when none is missing). */
export function missingFlags(offered: bigint, required: bigint): string[] {
  return flagNames(required & ~expandFlags(offered))
}
