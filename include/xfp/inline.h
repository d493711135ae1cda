/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * XFP_INLINE: how the headers written once for BPF and C++ (frame_parse.h,
 * arbitration.h, entry_hash.h, flow_key.h) declare their functions. BPF
 * needs them inlined into each program; user space lets the compiler choose.
 */
#ifndef XFP_INLINE_H
#define XFP_INLINE_H

#ifdef __BPF__
#define XFP_INLINE static __attribute__((always_inline)) inline
#else
#define XFP_INLINE static inline
#endif

#endif /* XFP_INLINE_H */
