package dev.modelpress.compression.quantize;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The inner loops of linear quantization, on the Java Vector API over a {@link MemorySegment} of
 * little-endian floats (a heap {@code float[]}, off-heap or memory-mapped memory alike).
 *
 * <p>A <em>shared</em> run is a contiguous range of weights that use one scale and zero point; a
 * <em>varying</em> run uses consecutive parameter sets, one per element (e.g. a row of a MatMul
 * weight quantized per output column). Rounding is to nearest, ties to even, like {@link
 * Math#rint}: adding and subtracting 1.5·2^23 leaves the nearest integer for |x| < 2^22, and codes
 * are far smaller. Kernels are called on runs of tens to thousands of elements; vectors stay in
 * locals, which is what lets C2 keep them in registers.
 *
 * <p>Min/max ranges and codes of every layout other than symmetric whole groups are in {@link
 * MinMaxKernels}; what stays here is the symmetric group kernel, the MSE error sums and packing.
 */
public final class QuantKernels {

  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  /** Bytes with as many lanes as {@link #F}, for narrowing float codes. */
  static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.length() * 8));
  static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
  /** Bytes with as many lanes as {@link #S}. */
  static final VectorSpecies<Byte> SB = VectorSpecies.of(byte.class, VectorShape.forBitSize(S.length() * 8));
  private static final float MAGIC = 12582912f;
  private static final int MAGIC_BITS = Float.floatToRawIntBits(MAGIC);
  static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat JAVA_FLOAT =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private QuantKernels() {}

  private static float rint(float x) {
    return (x + MAGIC) - MAGIC;
  }

  /**
   * Stores codes from floats already shifted by {@link #MAGIC} (rint(x·inv) + 1.5·2^23 + zp): such a
   * float's bits minus those of 1.5·2^23 are the rounded integer, so rounding needs no conversion
   * instruction; the clamp runs on ints and the narrowing to bytes wraps unsigned codes to their
   * bit patterns.
   */
  private static void store(FloatVector shifted, IntVector magicBits, IntVector qmin, IntVector qmax, byte[] codes,
      int off) {
    IntVector q = ((IntVector) shifted.reinterpretAsInts()).sub(magicBits).max(qmin).min(qmax);
    ((ByteVector) q.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, off);
  }

  /** Widens {@code lo[p]}/{@code hi[p]} to the min/max of the run. */
  static void rangeShared(MemorySegment w, long start, int len, float[] lo, float[] hi, int p) {
    FloatVector vmin = FloatVector.broadcast(F, lo[p]);
    FloatVector vmax = FloatVector.broadcast(F, hi[p]);
    int bound = F.loopBound(len);
    int i = 0;
    for (; i < bound; i += F.length()) {
      FloatVector v = FloatVector.fromMemorySegment(F, w, (start + i) * 4, LE);
      vmin = vmin.min(v);
      vmax = vmax.max(v);
    }
    float min = vmin.reduceLanes(VectorOperators.MIN);
    float max = vmax.reduceLanes(VectorOperators.MAX);
    for (; i < len; i++) {
      float v = w.getAtIndex(JAVA_FLOAT, start + i);
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    lo[p] = min;
    hi[p] = max;
  }

  /** Σ (w - (q - zp)·scale)² over the run for one candidate parameter set. */
  static float errorShared(MemorySegment w, long start, int len, float scale, float inv, float zp, float qmin,
      float qmax) {
    FloatVector vinv = FloatVector.broadcast(F, inv);
    FloatVector vscale = FloatVector.broadcast(F, scale);
    // Codes are centred (q - zp) directly: clamp bounds shift by zp instead.
    FloatVector vmin = FloatVector.broadcast(F, qmin - zp);
    FloatVector vmax = FloatVector.broadcast(F, qmax - zp);
    FloatVector magic = FloatVector.broadcast(F, MAGIC);
    FloatVector acc = FloatVector.zero(F);
    int bound = F.loopBound(len);
    int i = 0;
    for (; i < bound; i += F.length()) {
      FloatVector v = FloatVector.fromMemorySegment(F, w, (start + i) * 4, LE);
      FloatVector q = v.mul(vinv).add(magic).sub(magic).max(vmin).min(vmax);
      FloatVector e = v.sub(q.mul(vscale));
      acc = e.fma(e, acc);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; i < len; i++) {
      float v = w.getAtIndex(JAVA_FLOAT, start + i);
      float q = Math.max(qmin - zp, Math.min(qmax - zp, rint(v * inv)));
      float e = v - q * scale;
      sum += e * e;
    }
    return sum;
  }

  /** err[p0 + j] += (w_j - dequantized)² with element j's candidate parameters. */
  static void errorVarying(MemorySegment w, long start, int len, float[] scale, float[] inv, float[] zp, int p0,
      float qmin, float qmax, float[] err) {
    FloatVector vmin = FloatVector.broadcast(F, qmin);
    FloatVector vmax = FloatVector.broadcast(F, qmax);
    FloatVector magic = FloatVector.broadcast(F, MAGIC);
    int bound = F.loopBound(len);
    int i = 0;
    for (; i < bound; i += F.length()) {
      FloatVector v = FloatVector.fromMemorySegment(F, w, (start + i) * 4, LE);
      FloatVector vzp = FloatVector.fromArray(F, zp, p0 + i);
      FloatVector q = v.mul(FloatVector.fromArray(F, inv, p0 + i)).add(magic).sub(magic).add(vzp).max(vmin).min(vmax);
      FloatVector e = v.sub(q.sub(vzp).mul(FloatVector.fromArray(F, scale, p0 + i)));
      e.fma(e, FloatVector.fromArray(F, err, p0 + i)).intoArray(err, p0 + i);
    }
    for (; i < len; i++) {
      float v = w.getAtIndex(JAVA_FLOAT, start + i);
      int p = p0 + i;
      float q = Math.max(qmin, Math.min(qmax, rint(v * inv[p]) + zp[p]));
      float e = v - (q - zp[p]) * scale[p];
      err[p] += e * e;
    }
  }

  /**
   * Packs {@code n} 4-bit codes (the low nibble of each byte) two per byte, element 2i in the low
   * nibble as ONNX INT4/UINT4 and MatMulNBits store them. {@code n} may be odd: the last high
   * nibble is then 0.
   */
  public static void pack4(byte[] codes, int from, int n, byte[] out, int outOff) {
    MemorySegment src = MemorySegment.ofArray(codes);
    MemorySegment dst = MemorySegment.ofArray(out);
    int octets = n / 8;
    for (int i = 0; i < octets; i++) {
      // Eight codes in a little-endian long: keep the low nibbles, fold byte 2k+1 into the high
      // nibble of byte 2k, then gather the even bytes (SWAR; no narrowing vector shuffles).
      long x = src.get(LONG, from + 8L * i) & 0x0F0F0F0F0F0F0F0FL;
      x = (x | (x >>> 4)) & 0x00FF00FF00FF00FFL;
      x = (x | (x >>> 8)) & 0x0000FFFF0000FFFFL;
      x = (x | (x >>> 16)) & 0xFFFFFFFFL;
      dst.set(INT, outOff + 4L * i, (int) x);
    }
    for (int e = octets * 8; e + 1 < n; e += 2) {
      out[outOff + e / 2] = (byte) ((codes[from + e] & 0x0F) | (codes[from + e + 1] & 0x0F) << 4);
    }
    if ((n & 1) == 1) {
      out[outOff + n / 2] = (byte) (codes[from + n - 1] & 0x0F);
    }
  }

  /**
   * Min/max round-to-nearest of {@code groups} consecutive groups of {@code g} weights (g a
   * multiple of the vector length), one scale and zero point each into {@code scales[p0 + j]} /
   * {@code zps[p0 + j]}: the per-group hot loop without per-group call overhead. Same arithmetic
   * as the general path (scale in double, then float; zero point rint(qmin − lo/scale)).
   */
  static void quantizeGroups(MemorySegment w, long start, int groups, int g, boolean symmetric, double levels,
      int qmin, int qmax, int symmetricZp, byte[] codes, int off, float[] scales, int[] zps, int p0) {
    float[] lo = new float[groups];
    float[] hi = new float[groups];
    int lanes = F.length();
    int j = 0;
    if (lanes == 16) {
      // Sixteen groups at a time: lane-wise extremes per group, then one butterfly that leaves
      // group bitreverse(k)'s extreme in lane k. A horizontal reduction per group costs more
      // than the group's own arithmetic; this amortises it over sixteen groups.
      float[] lanesOut = new float[16];
      for (; j + 16 <= groups; j += 16) {
        long base = (start + (long) j * g) * 4;
        if (symmetric) {
          // Only max|w| matters: one butterfly over absolute values.
          butterflyMax(w, base, g, ABS, lanesOut);
          for (int k = 0; k < 16; k++) {
            hi[j + REVERSE16[k]] = lanesOut[k];
            lo[j + REVERSE16[k]] = -lanesOut[k];
          }
          continue;
        }
        butterflyMax(w, base, g, PLAIN, lanesOut);
        for (int k = 0; k < 16; k++) {
          hi[j + REVERSE16[k]] = Math.max(0f, lanesOut[k]);
        }
        butterflyMax(w, base, g, NEGATED, lanesOut);
        for (int k = 0; k < 16; k++) {
          lo[j + REVERSE16[k]] = Math.min(0f, -lanesOut[k]);
        }
      }
    }
    for (; j < groups; j++) {
      rangeShared(w, start + (long) j * g, g, lo, hi, j);
    }
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    IntVector magicBits = IntVector.broadcast(I, MAGIC_BITS);
    FloatVector magic = FloatVector.broadcast(F, MAGIC);
    for (j = 0; j < groups; j++) {
      float min = lo[j];
      float max = hi[j];
      double scale = symmetric ? Math.max(-(double) min, max) / levels : ((double) max - min) / levels;
      float sc = (float) scale;
      float inv = 1f / sc;
      int zp;
      if (!(sc > 0) || Float.isInfinite(sc) || Float.isInfinite(inv)) {
        sc = 1f;
        inv = 1f;
        zp = symmetric ? symmetricZp : Math.max(qmin, Math.min(qmax, 0));
      } else {
        zp = symmetric ? symmetricZp : (int) Math.max(qmin, Math.min(qmax, Math.rint(qmin - min / scale)));
      }
      scales[p0 + j] = sc;
      zps[p0 + j] = zp;
      FloatVector vinv = FloatVector.broadcast(F, inv);
      FloatVector vzp = FloatVector.broadcast(F, zp);
      long base = (start + (long) j * g) * 4;
      int o = off + j * g;
      for (int i = 0; i < g; i += lanes) {
        FloatVector v = FloatVector.fromMemorySegment(F, w, base + 4L * i, LE);
        store(v.mul(vinv).add(magic).add(vzp), magicBits, vqmin, vqmax, codes, o + i);
      }
    }
  }

  /** Bits of +∞: a max|w| at or above them is infinite (or NaN). */
  private static final int INF_BITS = 0x7F800000;

  /** Clears the sign bit: |w| as int bits, which order like the floats for non-negative values. */
  private static final int ABS_BITS = 0x7FFFFFFF;

  /**
   * Symmetric min/max round-to-nearest of {@code groups} consecutive groups of {@code g} weights
   * (g a multiple of the vector length): bit-identical to {@link #quantizeGroups} with {@code
   * symmetric}, in three passes over a chunk small enough to stay in L1/L2, each without per-group
   * scalar arithmetic.
   *
   * <ol>
   *   <li>max|w| per group in the int domain: clearing the sign bit leaves non-negative floats,
   *       whose bit patterns order as ints, so the group maximum is an integer max and an integer
   *       lane reduction (C2 compiles float max reductions into long blend chains, because of
   *       Java's NaN and −0 rules; the int ones are a few instructions).
   *   <li>scales of {@code F.length()} groups at a time: one vector division max|w| / levels and one
   *       reciprocal. The float quotient equals the general path's double quotient rounded to float:
   *       a double holds more than 2·24 + 2 bits, so rounding twice cannot differ from rounding once
   *       (Figueroa's double-rounding bound for division).
   *   <li>codes: per group a broadcast of its reciprocal and g / lanes fused vector steps,
   *       unrolled for groups of exactly two vectors (group 32 with AVX-512), where 4-bit codes are
   *       also packed in registers.
   * </ol>
   *
   * Generic loops over g measured ~0.33× of a memory copy, the unrolled ones 0.58–0.88× (int8,
   * docs/quantization.md). {@code amax} and {@code inv} are caller-owned scratch of at least
   * {@code groups} rounded up to a multiple of {@code F.length()}. When {@code packed4} is not null
   * the codes are also packed two per byte into it from index {@code off / 2}.
   */
  static void quantizeGroupsSymmetric(MemorySegment w, long start, int groups, int g, float levels, int qmin,
      int qmax, int zp, byte[] codes, int off, float[] scales, int[] zps, int p0, int[] amax, float[] inv,
      byte[] packed4) {
    if ((zp & 1) != 0) {
      // The zero point is folded into the rounding constant below, which keeps ties-to-even only
      // for an even zero point (every integer grid of 2 bits or more has one).
      quantizeGroups(w, start, groups, g, true, levels, qmin, qmax, zp, codes, off, scales, zps, p0);
      if (packed4 != null) {
        pack4(codes, off, groups * g, packed4, off / 2);
      }
      return;
    }
    if (g == 2 * F.length()) {
      groupRanges2(w, start, groups, amax);
    } else {
      groupRanges(w, start, groups, g, amax);
    }
    groupScales(groups, levels, amax, inv, scales, p0);
    java.util.Arrays.fill(zps, p0, p0 + groups, zp);
    if (g == 2 * F.length() && packed4 != null && F.length() == 16) {
      // With every max|w| finite no code can leave the grid: |w · inv| ≤ max|w| · inv ≤ levels
      // (1 + 3·2^-24) rounds to at most levels, and degenerate groups (scale 1) hold only |w| < 1.
      // Only an infinite weight needs the clamp.
      int top = 0;
      for (int j = 0; j < groups; j++) {
        top = Math.max(top, amax[j]);
      }
      groupCodes2Packed(w, start, groups, qmin, qmax, zp, inv, codes, off, packed4, top >= INF_BITS);
    } else if (g == 2 * F.length()) {
      groupCodes2(w, start, groups, qmin, qmax, zp, inv, codes, off);
    } else {
      groupCodes(w, start, groups, g, qmin, qmax, zp, inv, codes, off);
    }
    if (packed4 != null && !(g == 2 * F.length() && F.length() == 16)) {
      pack4(codes, off, groups * g, packed4, off / 2);
    }
  }

  /** Eight bytes with as many lanes as a 512-bit vector has longs. */
  private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;

  /**
   * {@link #groupCodes2} that also packs the 4-bit codes two per byte while they are in registers:
   * reinterpreted as longs, each lane holds codes 2k (low half) and 2k+1 (high half); with all but
   * their low nibbles cleared, the low byte of lane | (lane >>> 28) is their packed byte, and the
   * long-to-byte narrowing keeps just that byte. For 16-lane vectors only (8 longs, 8 packed bytes).
   */
  private static void groupCodes2Packed(MemorySegment w, long start, int groups, int qmin, int qmax, int zp,
      float[] inv, byte[] codes, int off, byte[] packed4, boolean clamp) {
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    IntVector magicBits = IntVector.broadcast(I, MAGIC_BITS);
    FloatVector shift = FloatVector.broadcast(F, MAGIC + zp);
    // Two copies of the loop rather than a conditional clamp inside it: a vector assigned on one
    // branch only is merged through a phi, which C2 does not scalar-replace (the loop then boxes
    // every vector: 70 MB of garbage per 64 MiB tensor, measured with JMH's gc profiler).
    if (clamp) {
      for (int j = 0; j < groups; j++) {
        FloatVector vinv = FloatVector.broadcast(F, inv[j]);
        long base = (start + 32L * j) * 4;
        int o = off + 32 * j;
        FloatVector a = FloatVector.fromMemorySegment(F, w, base, LE);
        FloatVector b = FloatVector.fromMemorySegment(F, w, base + 64, LE);
        IntVector qa = ((IntVector) a.mul(vinv).add(shift).reinterpretAsInts()).sub(magicBits).max(vqmin).min(vqmax);
        IntVector qb = ((IntVector) b.mul(vinv).add(shift).reinterpretAsInts()).sub(magicBits).max(vqmin).min(vqmax);
        ((ByteVector) qa.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o);
        ((ByteVector) qb.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o + 16);
        nibbles(qa).intoArray(packed4, o / 2);
        nibbles(qb).intoArray(packed4, o / 2 + 8);
      }
      return;
    }
    for (int j = 0; j < groups; j++) {
      FloatVector vinv = FloatVector.broadcast(F, inv[j]);
      long base = (start + 32L * j) * 4;
      int o = off + 32 * j;
      FloatVector a = FloatVector.fromMemorySegment(F, w, base, LE);
      FloatVector b = FloatVector.fromMemorySegment(F, w, base + 64, LE);
      IntVector qa = ((IntVector) a.mul(vinv).add(shift).reinterpretAsInts()).sub(magicBits);
      IntVector qb = ((IntVector) b.mul(vinv).add(shift).reinterpretAsInts()).sub(magicBits);
      ((ByteVector) qa.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o);
      ((ByteVector) qb.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o + 16);
      nibbles(qa).intoArray(packed4, o / 2);
      nibbles(qb).intoArray(packed4, o / 2 + 8);
    }
  }

  private static ByteVector nibbles(IntVector q) {
    // Low nibbles only, then lane 2k+1's nibble (bits 32..35 of the long) next to lane 2k's.
    LongVector l = (LongVector) q.and(0xF).reinterpretAsLongs();
    return (ByteVector) l.or(l.lanewise(VectorOperators.LSHR, 28)).convertShape(VectorOperators.L2B, B8, 0);
  }

  /** amax[j] = max|w| of group j as int bits. */
  private static void groupRanges(MemorySegment w, long start, int groups, int g, int[] amax) {
    IntVector absMask = IntVector.broadcast(I, ABS_BITS);
    for (int j = 0; j < groups; j++) {
      long base = (start + (long) j * g) * 4;
      IntVector m = IntVector.fromMemorySegment(I, w, base, LE).and(absMask);
      for (int i = F.length(); i < g; i += F.length()) {
        m = m.max(IntVector.fromMemorySegment(I, w, base + 4L * i, LE).and(absMask));
      }
      amax[j] = m.reduceLanes(VectorOperators.MAX);
    }
  }

  /** {@link #groupRanges} for groups of exactly two vectors, unrolled (the common group 32 with 16 lanes). */
  private static void groupRanges2(MemorySegment w, long start, int groups, int[] amax) {
    IntVector absMask = IntVector.broadcast(I, ABS_BITS);
    long vbytes = 4L * F.length();
    for (int j = 0; j < groups; j++) {
      long base = (start + 2L * F.length() * j) * 4;
      IntVector a = IntVector.fromMemorySegment(I, w, base, LE);
      IntVector b = IntVector.fromMemorySegment(I, w, base + vbytes, LE);
      amax[j] = a.and(absMask).max(b.and(absMask)).reduceLanes(VectorOperators.MAX);
    }
  }

  /**
   * Scales of {@code F.length()} groups per step: one vector division max|w| / levels and one
   * reciprocal; {@code inv} receives the reciprocals.
   */
  private static void groupScales(int groups, float levels, int[] amax, float[] inv, float[] scales, int p0) {
    int lanes = F.length();
    FloatVector vlevels = FloatVector.broadcast(F, levels);
    FloatVector one = FloatVector.broadcast(F, 1f);
    for (int j = 0; j < groups; j += lanes) {
      FloatVector a = IntVector.fromArray(I, amax, j).reinterpretAsFloats();
      FloatVector sc = a.div(vlevels);
      FloatVector iv = one.div(sc);
      // The general path's test !(sc > 0) || isInfinite(sc) || isInfinite(inv): sc and inv are
      // never negative here, so "infinite" is "equal to +inf". Such groups get scale 1.
      VectorMask<Float> bad = sc.compare(VectorOperators.GT, 0f).not()
          .or(sc.compare(VectorOperators.EQ, Float.POSITIVE_INFINITY))
          .or(iv.compare(VectorOperators.EQ, Float.POSITIVE_INFINITY));
      iv.blend(one, bad).intoArray(inv, j);
      if (j + lanes <= groups) {
        sc.blend(one, bad).intoArray(scales, p0 + j);
      } else {
        sc.blend(one, bad).intoArray(scales, p0 + j, F.indexInRange(j, groups));
      }
    }
  }

  /**
   * Codes of every group with its reciprocal. The zero point rides in the rounding constant:
   * x·inv + (1.5·2^23 + zp) rounds exactly as (x·inv + 1.5·2^23) + zp for an even zp (the
   * constant stays even, so ties still go to the even integer), one addition fewer.
   */
  private static void groupCodes(MemorySegment w, long start, int groups, int g, int qmin, int qmax, int zp,
      float[] inv, byte[] codes, int off) {
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    IntVector magicBits = IntVector.broadcast(I, MAGIC_BITS);
    FloatVector shift = FloatVector.broadcast(F, MAGIC + zp);
    for (int j = 0; j < groups; j++) {
      FloatVector vinv = FloatVector.broadcast(F, inv[j]);
      long base = (start + (long) j * g) * 4;
      int o = off + j * g;
      for (int i = 0; i < g; i += F.length()) {
        FloatVector v = FloatVector.fromMemorySegment(F, w, base + 4L * i, LE);
        store(v.mul(vinv).add(shift), magicBits, vqmin, vqmax, codes, o + i);
      }
    }
  }

  /** {@link #groupCodes} for groups of exactly two vectors, unrolled. */
  private static void groupCodes2(MemorySegment w, long start, int groups, int qmin, int qmax, int zp, float[] inv,
      byte[] codes, int off) {
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    IntVector magicBits = IntVector.broadcast(I, MAGIC_BITS);
    FloatVector shift = FloatVector.broadcast(F, MAGIC + zp);
    int lanes = F.length();
    long vbytes = 4L * lanes;
    for (int j = 0; j < groups; j++) {
      FloatVector vinv = FloatVector.broadcast(F, inv[j]);
      long base = (start + 2L * lanes * j) * 4;
      int o = off + 2 * lanes * j;
      FloatVector a = FloatVector.fromMemorySegment(F, w, base, LE);
      FloatVector b = FloatVector.fromMemorySegment(F, w, base + vbytes, LE);
      store(a.mul(vinv).add(shift), magicBits, vqmin, vqmax, codes, o);
      store(b.mul(vinv).add(shift), magicBits, vqmin, vqmax, codes, o + lanes);
    }
  }

  private static final int[] REVERSE16 = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
  private static final VectorShuffle<Float> SWAP8 = VectorShuffle.fromOp(F, k -> k ^ 8);
  private static final VectorShuffle<Float> SWAP4 = VectorShuffle.fromOp(F, k -> k ^ 4);
  private static final VectorShuffle<Float> SWAP2 = VectorShuffle.fromOp(F, k -> k ^ 2);
  private static final VectorShuffle<Float> SWAP1 = VectorShuffle.fromOp(F, k -> k ^ 1);
  private static final VectorMask<Float> BIT8 = VectorMask.fromLong(F, 0xFF00L);
  private static final VectorMask<Float> BIT4 = VectorMask.fromLong(F, 0xF0F0L);
  private static final VectorMask<Float> BIT2 = VectorMask.fromLong(F, 0xCCCCL);
  private static final VectorMask<Float> BIT1 = VectorMask.fromLong(F, 0xAAAAL);

  private static final int PLAIN = 0;
  private static final int NEGATED = 1;
  private static final int ABS = 2;

  /** Lane-wise max of one group's weights (as they are, negated, or absolute) over its g/16 vectors. */
  private static FloatVector groupMax(MemorySegment w, long base, int g, int mode) {
    FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
    for (int i = 0; i < g; i += 16) {
      FloatVector v = FloatVector.fromMemorySegment(F, w, base + 4L * i, LE);
      m = m.max(mode == PLAIN ? v : mode == NEGATED ? v.neg() : v.abs());
    }
    return m;
  }

  /** Lanes with the bit clear: max(a[k], a[k^s]); lanes with it set: max(b[k^s], b[k]). */
  private static FloatVector combine(FloatVector a, FloatVector b, VectorShuffle<Float> swap, VectorMask<Float> high) {
    FloatVector x = a.blend(b.rearrange(swap), high);
    FloatVector y = a.rearrange(swap).blend(b, high);
    return x.max(y);
  }

  /** Max of each of 16 consecutive groups (of the weights in {@code mode}); lane k holds group rev(k). */
  private static void butterflyMax(MemorySegment w, long base, int g, int mode, float[] out) {
    long step = 4L * g;
    FloatVector a0 = combine(groupMax(w, base, g, mode), groupMax(w, base + step, g, mode), SWAP8, BIT8);
    FloatVector a1 = combine(groupMax(w, base + 2 * step, g, mode), groupMax(w, base + 3 * step, g, mode), SWAP8, BIT8);
    FloatVector a2 = combine(groupMax(w, base + 4 * step, g, mode), groupMax(w, base + 5 * step, g, mode), SWAP8, BIT8);
    FloatVector a3 = combine(groupMax(w, base + 6 * step, g, mode), groupMax(w, base + 7 * step, g, mode), SWAP8, BIT8);
    FloatVector a4 = combine(groupMax(w, base + 8 * step, g, mode), groupMax(w, base + 9 * step, g, mode), SWAP8, BIT8);
    FloatVector a5 = combine(groupMax(w, base + 10 * step, g, mode), groupMax(w, base + 11 * step, g, mode), SWAP8,
        BIT8);
    FloatVector a6 = combine(groupMax(w, base + 12 * step, g, mode), groupMax(w, base + 13 * step, g, mode), SWAP8,
        BIT8);
    FloatVector a7 = combine(groupMax(w, base + 14 * step, g, mode), groupMax(w, base + 15 * step, g, mode), SWAP8,
        BIT8);
    FloatVector b0 = combine(a0, a1, SWAP4, BIT4);
    FloatVector b1 = combine(a2, a3, SWAP4, BIT4);
    FloatVector b2 = combine(a4, a5, SWAP4, BIT4);
    FloatVector b3 = combine(a6, a7, SWAP4, BIT4);
    FloatVector c0 = combine(b0, b1, SWAP2, BIT2);
    FloatVector c1 = combine(b2, b3, SWAP2, BIT2);
    combine(c0, c1, SWAP1, BIT1).intoArray(out, 0);
  }
}
