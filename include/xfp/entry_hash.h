/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The hash of the entry table (abi.h, struct xfp_bucket), written once for
 * both sides: user space places each key with it, the BPF programs find the
 * key with it, so both agree by construction.
 *
 * The key is the five 64-bit words of a masked struct xfp_fields; the seed
 * lets user space rebuild a table whose keys would not place. The low half
 * of the result picks the first candidate bucket, the high half the second.
 */
#ifndef XFP_ENTRY_HASH_H
#define XFP_ENTRY_HASH_H

#include "xfp/abi.h"
#include "xfp/inline.h"

#define XFP_ENTRY_KEY_WORDS (sizeof(struct xfp_fields) / 8)

XFP_INLINE __u64 xfp_entry_hash(const __u64 *w, __u64 seed)
{
	/* Five independent multiplies (they overlap in the pipeline; a chain of
	 * them costs five multiply latencies, most of a probe). A multiply
	 * carries bits only upwards: bit j of a product depends on bits 0..j
	 * of the word. Folding the high half down, multiplying again and
	 * folding once more lets every key bit reach the low bits, which pick
	 * the first bucket. Without the last fold, bucket bit b saw only key
	 * bits 0..32+b of each word: a remote MAC's first two bytes (bits 48..63
	 * of word 1) never moved a key's first bucket, and 12,500 /24 prefixes
	 * that differ there crowded into 256 first buckets, so most probes read
	 * two buckets (tests/unit/entry_table_test.cpp, EveryKeyBitMoves...). */
	__u64 h = ((w[0] ^ seed) * 0x9e3779b97f4a7c15ull) ^ (w[1] * 0xff51afd7ed558ccdull) ^
		  (w[2] * 0xc4ceb9fe1a85ec53ull) ^ (w[3] * 0xd6e8feb86659fd93ull) ^
		  (w[4] * 0xa0761d6478bd642full);

	h ^= seed;
	h ^= h >> 32;
	h *= 0xe7037ed1a0b428dbull;
	return h ^ (h >> 32);
}

/* The two candidate buckets of a hash, relative to the bank's region. */
XFP_INLINE __u32 xfp_entry_bucket(__u64 h, __u32 choice, __u32 bucket_mask)
{
	return (__u32)(choice ? h >> 32 : h) & bucket_mask;
}

#endif /* XFP_ENTRY_HASH_H */
