package dev.modelpress.compression.quantize;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Min/max round-to-nearest kernels with ranges in the int domain, for every layout that is not a
 * symmetric whole-group one ({@link QuantKernels#quantizeGroupsSymmetric}): runs sharing one
 * parameter set (per channel along a leading axis, per tensor), runs with one set per element (per
 * channel along the last axis, groups along a non-last axis) and asymmetric whole groups.
 *
 * <p><b>Ranges without float compares.</b> The range always includes 0, so only non-negative
 * weights can raise the maximum and only negative ones can lower the minimum. A non-negative
 * float's bits order like the float as a signed int, and negative floats' bits are negative ints,
 * so max(0, w) is a signed int max over the raw bits starting from 0. A negative float's bits,
 * with the sign bit flipped, are a non-negative int that grows with the magnitude, while a
 * non-negative float's flipped bits are negative; so min(0, w) is a signed int max of the flipped
 * bits, and a result whose flipped-back bits have the sign clear means "no negative weight", i.e.
 * 0. −0 is kept as Java's {@code Math.min(0f, -0f)} keeps it. For symmetric grids only
 * max|w| matters: a max of the bits with the sign cleared. (C2 compiles float min/max, lane-wise
 * and reductions, into blend sequences because of Java's NaN and −0 rules; the int forms are one
 * instruction each.) NaN weights are outside the definition (the step never sees them).
 *
 * <p><b>Codes.</b> x·inv + 1.5·2^23 leaves rint(x·inv) in the low mantissa bits; subtracting the
 * constant's bits minus the zero point in the int domain gives rint(x·inv) + zp in one step, for any
 * zero point (folding an odd zero point into the float constant would break ties-to-even). For
 * 16-lane vectors 4-bit codes are also packed two per byte in registers: reinterpreted as longs,
 * each lane holds codes 2k (low half) and 2k+1 (high half), and with all but their low nibbles
 * cleared, the low byte of lane | lane >>> 28 is their packed byte.
 *
 * <p>Parameters (scale, zero point) are chosen by the caller, once per run or set, in double as
 * the definition says; only ranges and codes are here. For whole asymmetric groups the parameters
 * are computed here with the same double arithmetic, since a call per group would cost more than
 * the group.
 */
final class MinMaxKernels {

  static final VectorSpecies<Float> F = QuantKernels.F;
  static final VectorSpecies<Integer> I = QuantKernels.I;
  static final VectorSpecies<Byte> B = QuantKernels.B;
  /** Whether 4-bit codes can be packed in registers: a vector of ints is 8 longs, 8 packed bytes. */
  static final boolean PACK_IN_REGISTERS = F.length() == 16;
  private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
  private static final float MAGIC = 12582912f;
  static final int MAGIC_BITS = Float.floatToRawIntBits(MAGIC);
  private static final int SIGN = 0x80000000;
  private static final int ABS = 0x7FFFFFFF;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);

  private MinMaxKernels() {}

  // ---- int-domain range helpers --------------------------------------------------------------

  /** max(0, w) from the signed max of raw bits started at 0. */
  static float hiOf(int maxBits) {
    return Float.intBitsToFloat(maxBits);
  }

  /** min(0, w) from the signed max of sign-flipped bits started at {@code SIGN} (flipped +0). */
  static float loOf(int maxFlipped) {
    int bits = maxFlipped ^ SIGN;
    return bits < 0 ? Float.intBitsToFloat(bits) : 0f;
  }

  /**
   * Range of one run: {@code out[0]} = bits of max(0, max w) (symmetric: of max|w|), {@code out[1]}
   * = the flipped-bits maximum for {@link #loOf} (symmetric: unused).
   */
  static void rangeRun(MemorySegment w, long start, int len, boolean symmetric, int[] out) {
    int lanes = F.length();
    int bound = len - 2 * lanes + 1;
    int i = 0;
    long base = start * 4;
    if (symmetric) {
      IntVector m0 = IntVector.zero(I);
      IntVector m1 = IntVector.zero(I);
      for (; i < bound; i += 2 * lanes) {
        // Two accumulators: the max chain is the loop's only dependency.
        m0 = m0.max(IntVector.fromMemorySegment(I, w, base + 4L * i, LE).and(ABS));
        m1 = m1.max(IntVector.fromMemorySegment(I, w, base + 4L * i + 4L * lanes, LE).and(ABS));
      }
      int m = m0.max(m1).reduceLanes(VectorOperators.MAX);
      for (; i < len; i++) {
        m = Math.max(m, w.get(INT, base + 4L * i) & ABS);
      }
      out[0] = m;
      return;
    }
    IntVector hi0 = IntVector.zero(I);
    IntVector hi1 = IntVector.zero(I);
    IntVector lo0 = IntVector.broadcast(I, SIGN);
    IntVector lo1 = lo0;
    for (; i < bound; i += 2 * lanes) {
      IntVector a = IntVector.fromMemorySegment(I, w, base + 4L * i, LE);
      IntVector b = IntVector.fromMemorySegment(I, w, base + 4L * i + 4L * lanes, LE);
      hi0 = hi0.max(a);
      hi1 = hi1.max(b);
      lo0 = lo0.max(a.lanewise(VectorOperators.XOR, SIGN));
      lo1 = lo1.max(b.lanewise(VectorOperators.XOR, SIGN));
    }
    int hi = hi0.max(hi1).reduceLanes(VectorOperators.MAX);
    int lo = lo0.max(lo1).reduceLanes(VectorOperators.MAX);
    for (; i < len; i++) {
      int v = w.get(INT, base + 4L * i);
      hi = Math.max(hi, v);
      lo = Math.max(lo, v ^ SIGN);
    }
    out[0] = hi;
    out[1] = lo;
  }

  /**
   * Element j of the run widens set {@code p0 + j}: {@code hi[p0 + j]} as in {@link #rangeRun}'s
   * {@code out[0]}, {@code lo[p0 + j]} as its {@code out[1]} (not touched when symmetric). Start
   * {@code hi} at 0 and {@code lo} at {@code SIGN}.
   */
  static void rangeVarying(MemorySegment w, long start, int len, boolean symmetric, int[] hi, int[] lo, int p0) {
    int lanes = F.length();
    int bound = I.loopBound(len);
    long base = start * 4;
    int i = 0;
    if (symmetric) {
      for (; i < bound; i += lanes) {
        IntVector v = IntVector.fromMemorySegment(I, w, base + 4L * i, LE).and(ABS);
        IntVector.fromArray(I, hi, p0 + i).max(v).intoArray(hi, p0 + i);
      }
      for (; i < len; i++) {
        hi[p0 + i] = Math.max(hi[p0 + i], w.get(INT, base + 4L * i) & ABS);
      }
      return;
    }
    for (; i < bound; i += lanes) {
      IntVector v = IntVector.fromMemorySegment(I, w, base + 4L * i, LE);
      IntVector.fromArray(I, hi, p0 + i).max(v).intoArray(hi, p0 + i);
      IntVector.fromArray(I, lo, p0 + i).max(v.lanewise(VectorOperators.XOR, SIGN)).intoArray(lo, p0 + i);
    }
    for (; i < len; i++) {
      int v = w.get(INT, base + 4L * i);
      hi[p0 + i] = Math.max(hi[p0 + i], v);
      lo[p0 + i] = Math.max(lo[p0 + i], v ^ SIGN);
    }
  }

  /** The starting values of {@link #rangeVarying}'s {@code lo}: flipped +0. */
  static int loStart() {
    return SIGN;
  }

  // ---- codes ---------------------------------------------------------------------------------

  /** The int subtracted from shifted code bits: the rounding constant's bits minus the zero point. */
  static int bias(int zp) {
    return MAGIC_BITS - zp;
  }

  /**
   * codes[off + j] = clamp(rint(w_j · inv) + zp, qmin, qmax) for one parameter set; with {@code
   * packed4} also the packed 4-bit codes from byte {@code off / 2} ({@code off} must then be even),
   * the run's last byte holding only its last code when {@code len} is odd.
   */
  static void codesRun(MemorySegment w, long start, int len, float inv, int zp, int qmin, int qmax, byte[] codes,
      int off, byte[] packed4) {
    FloatVector vinv = FloatVector.broadcast(F, inv);
    FloatVector magic = FloatVector.broadcast(F, MAGIC);
    IntVector vbias = IntVector.broadcast(I, bias(zp));
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    int lanes = F.length();
    int bound = F.loopBound(len);
    long base = start * 4;
    int i = 0;
    boolean pack = packed4 != null && PACK_IN_REGISTERS && (off & 1) == 0;
    if (pack) {
      for (; i < bound; i += lanes) {
        IntVector q = code(FloatVector.fromMemorySegment(F, w, base + 4L * i, LE), vinv, magic, vbias, vqmin, vqmax);
        ((ByteVector) q.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, off + i);
        nibbles(q).intoArray(packed4, (off + i) / 2);
      }
    } else {
      for (; i < bound; i += lanes) {
        IntVector q = code(FloatVector.fromMemorySegment(F, w, base + 4L * i, LE), vinv, magic, vbias, vqmin, vqmax);
        ((ByteVector) q.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, off + i);
      }
    }
    int bias = bias(zp);
    for (; i < len; i++) {
      codes[off + i] = scalarCode(w.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE), start + i), inv, bias,
          qmin, qmax);
    }
    if (packed4 != null) {
      // The pairs the vector loop did not pack (all of them without register packing).
      int from = pack ? bound : 0;
      QuantKernels.pack4(codes, off + from, len - from, packed4, (off + from) / 2);
    }
  }

  /**
   * As {@link #codesRun} with element j using {@code inv[p0 + j]} and {@code bias[p0 + j]} (= {@link
   * #bias} of its zero point).
   */
  static void codesVarying(MemorySegment w, long start, int len, float[] inv, int[] bias, int p0, int qmin, int qmax,
      byte[] codes, int off, byte[] packed4) {
    FloatVector magic = FloatVector.broadcast(F, MAGIC);
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    int lanes = F.length();
    int bound = F.loopBound(len);
    long base = start * 4;
    int i = 0;
    boolean pack = packed4 != null && PACK_IN_REGISTERS && (off & 1) == 0;
    for (; i < bound; i += lanes) {
      FloatVector vinv = FloatVector.fromArray(F, inv, p0 + i);
      IntVector vbias = IntVector.fromArray(I, bias, p0 + i);
      IntVector q = code(FloatVector.fromMemorySegment(F, w, base + 4L * i, LE), vinv, magic, vbias, vqmin, vqmax);
      ((ByteVector) q.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, off + i);
      if (pack) {
        nibbles(q).intoArray(packed4, (off + i) / 2);
      }
    }
    for (; i < len; i++) {
      codes[off + i] = scalarCode(w.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE), start + i), inv[p0 + i],
          bias[p0 + i], qmin, qmax);
    }
    if (packed4 != null) {
      int from = pack ? bound : 0;
      QuantKernels.pack4(codes, off + from, len - from, packed4, (off + from) / 2);
    }
  }

  private static IntVector code(FloatVector v, FloatVector inv, FloatVector magic, IntVector bias, IntVector qmin,
      IntVector qmax) {
    return ((IntVector) v.mul(inv).add(magic).reinterpretAsInts()).sub(bias).max(qmin).min(qmax);
  }

  private static byte scalarCode(float v, float inv, int bias, int qmin, int qmax) {
    return (byte) Math.max(qmin, Math.min(qmax, Float.floatToRawIntBits(v * inv + MAGIC) - bias));
  }

  /** The 8 packed bytes of 16 int codes (low nibbles; code 2k in the low nibble of byte k). */
  static ByteVector nibbles(IntVector q) {
    LongVector l = (LongVector) q.and(0xF).reinterpretAsLongs();
    return (ByteVector) l.or(l.lanewise(VectorOperators.LSHR, 28)).convertShape(VectorOperators.L2B, B8, 0);
  }

  private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
  /** Floats and ints with as many lanes as {@link #D}. */
  private static final VectorSpecies<Float> DF = VectorSpecies.of(float.class, VectorShape.forBitSize(D.length() * 32));
  private static final VectorSpecies<Integer> DI = VectorSpecies.of(int.class, VectorShape.forBitSize(D.length() * 32));
  /** 1.5·2^52: x + it − it is rint(x) for |x| < 2^51. */
  private static final double DOUBLE_MAGIC = 6755399441055744.0;

  /**
   * Asymmetric parameters of {@code groups} groups from their range bits ({@code hi}: max of raw
   * bits, {@code lo}: max of sign-flipped bits, both over the group only), {@code D.length()} groups
   * per step in double lanes: the same IEEE operations, in the same order, as the scalar definition
   * (scale = (hi − lo) / levels in double, then float; reciprocal in float; zero point
   * rint(qmin − lo / scale) clamped), so every lane rounds exactly as the scalar code would. rint is
   * the 1.5·2^52 trick, exact here because |lo / scale| ≤ levels whenever the lane is not
   * degenerate, and degenerate lanes (zero, subnormal or infinite scale) are replaced by scale 1 and
   * zero point clamp(0), as {@code LinearQuantizer} does.
   */
  static void groupParams(int groups, double levels, int qmin, int qmax, int[] hi, int[] lo, float[] inv, int[] bias,
      float[] scales, int[] zps, int p0) {
    int lanes = D.length();
    int zpFallback = Math.max(qmin, Math.min(qmax, 0));
    DoubleVector vlevels = DoubleVector.broadcast(D, levels);
    DoubleVector magic = DoubleVector.broadcast(D, DOUBLE_MAGIC);
    DoubleVector dqmin = DoubleVector.broadcast(D, qmin);
    DoubleVector dqmax = DoubleVector.broadcast(D, qmax);
    FloatVector one = FloatVector.broadcast(DF, 1f);
    IntVector fallback = IntVector.broadcast(DI, zpFallback);
    IntVector magicBits = IntVector.broadcast(DI, MAGIC_BITS);
    int j = 0;
    for (; j + lanes <= groups; j += lanes) {
      FloatVector hf = IntVector.fromArray(DI, hi, j).max(0).reinterpretAsFloats();
      IntVector lb = IntVector.fromArray(DI, lo, j).lanewise(VectorOperators.XOR, SIGN);
      // Flipped back, a non-negative result means the group has no negative weight: lo = 0.
      FloatVector lf = lb.blend(0, lb.compare(VectorOperators.GE, 0)).reinterpretAsFloats();
      DoubleVector hd = (DoubleVector) hf.convertShape(VectorOperators.F2D, D, 0);
      DoubleVector ld = (DoubleVector) lf.convertShape(VectorOperators.F2D, D, 0);
      DoubleVector scale = hd.sub(ld).div(vlevels);
      FloatVector sc = (FloatVector) scale.convertShape(VectorOperators.D2F, DF, 0);
      FloatVector iv = one.div(sc);
      VectorMask<Float> bad = sc.compare(VectorOperators.GT, 0f).not()
          .or(sc.compare(VectorOperators.EQ, Float.POSITIVE_INFINITY))
          .or(iv.compare(VectorOperators.EQ, Float.POSITIVE_INFINITY));
      DoubleVector zd = dqmin.sub(ld.div(scale)).add(magic).sub(magic).max(dqmin).min(dqmax);
      IntVector zp = ((IntVector) zd.convertShape(VectorOperators.D2I, DI, 0)).blend(fallback, bad.cast(DI));
      sc.blend(one, bad).intoArray(scales, p0 + j);
      iv.blend(one, bad).intoArray(inv, j);
      zp.intoArray(zps, p0 + j);
      magicBits.sub(zp).intoArray(bias, j);
    }
    for (; j < groups; j++) {
      float max = hiOf(Math.max(0, hi[j]));
      float min = loOf(lo[j]);
      double scale = ((double) max - min) / levels;
      float sc = (float) scale;
      float iv = 1f / sc;
      int zp;
      if (!(sc > 0) || Float.isInfinite(sc) || Float.isInfinite(iv)) {
        sc = 1f;
        iv = 1f;
        zp = zpFallback;
      } else {
        zp = (int) Math.max(qmin, Math.min(qmax, Math.rint(qmin - min / scale)));
      }
      scales[p0 + j] = sc;
      zps[p0 + j] = zp;
      inv[j] = iv;
      bias[j] = bias(zp);
    }
  }

  // ---- whole asymmetric groups -----------------------------------------------------------------

  /**
   * Asymmetric min/max round-to-nearest of {@code groups} consecutive groups of {@code g} weights (g
   * a multiple of the vector length) into {@code scales[p0 + j]}, {@code zps[p0 + j]} and codes from
   * {@code off} (and packed 4-bit codes from {@code off / 2} when {@code packed4} is not null, off
   * even). Three passes over a chunk the caller keeps within L1/L2: int-domain ranges, the
   * parameters in double exactly as {@code LinearQuantizer} chooses them, and the codes. {@code hi},
   * {@code lo}, {@code inv} and {@code bias} are caller-owned scratch of at least {@code groups}.
   */
  static void groupsAsymmetric(MemorySegment w, long start, int groups, int g, double levels, int qmin, int qmax,
      byte[] codes, int off, float[] scales, int[] zps, int p0, int[] hi, int[] lo, float[] inv, int[] bias,
      byte[] packed4) {
    int lanes = F.length();
    long base = start * 4;
    IntVector flip = IntVector.broadcast(I, SIGN);
    if (g == 2 * lanes) {
      // Unrolled for groups of two vectors (group 32 with 16 lanes): a loop of two iterations per
      // group costs more than its body.
      for (int j = 0; j < groups; j++) {
        long gb = base + 8L * lanes * j;
        IntVector a = IntVector.fromMemorySegment(I, w, gb, LE);
        IntVector b = IntVector.fromMemorySegment(I, w, gb + 4L * lanes, LE);
        hi[j] = a.max(b).reduceLanes(VectorOperators.MAX);
        lo[j] = a.lanewise(VectorOperators.XOR, flip).max(b.lanewise(VectorOperators.XOR, flip))
            .reduceLanes(VectorOperators.MAX);
      }
    } else {
      for (int j = 0; j < groups; j++) {
        long gb = base + 4L * g * j;
        IntVector a = IntVector.fromMemorySegment(I, w, gb, LE);
        IntVector h = a;
        IntVector l = a.lanewise(VectorOperators.XOR, flip);
        for (int i = lanes; i < g; i += lanes) {
          IntVector b = IntVector.fromMemorySegment(I, w, gb + 4L * i, LE);
          h = h.max(b);
          l = l.max(b.lanewise(VectorOperators.XOR, flip));
        }
        // Started from the group's first vector, not from 0: the 0 of the range is applied below.
        hi[j] = h.reduceLanes(VectorOperators.MAX);
        lo[j] = l.reduceLanes(VectorOperators.MAX);
      }
    }
    groupParams(groups, levels, qmin, qmax, hi, lo, inv, bias, scales, zps, p0);
    IntVector vqmin = IntVector.broadcast(I, qmin);
    IntVector vqmax = IntVector.broadcast(I, qmax);
    FloatVector magic = FloatVector.broadcast(F, MAGIC);
    boolean pack = packed4 != null && PACK_IN_REGISTERS && (off & 1) == 0;
    if (g == 2 * lanes) {
      for (int j = 0; j < groups; j++) {
        FloatVector vinv = FloatVector.broadcast(F, inv[j]);
        IntVector vbias = IntVector.broadcast(I, bias[j]);
        long gb = base + 8L * lanes * j;
        int o = off + 2 * lanes * j;
        IntVector qa = code(FloatVector.fromMemorySegment(F, w, gb, LE), vinv, magic, vbias, vqmin, vqmax);
        IntVector qb = code(FloatVector.fromMemorySegment(F, w, gb + 4L * lanes, LE), vinv, magic, vbias, vqmin, vqmax);
        ((ByteVector) qa.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o);
        ((ByteVector) qb.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o + lanes);
        if (pack) {
          nibbles(qa).intoArray(packed4, o / 2);
          nibbles(qb).intoArray(packed4, o / 2 + lanes / 2);
        }
      }
    } else {
      for (int j = 0; j < groups; j++) {
        FloatVector vinv = FloatVector.broadcast(F, inv[j]);
        IntVector vbias = IntVector.broadcast(I, bias[j]);
        long gb = base + 4L * g * j;
        int o = off + g * j;
        for (int i = 0; i < g; i += lanes) {
          IntVector q = code(FloatVector.fromMemorySegment(F, w, gb + 4L * i, LE), vinv, magic, vbias, vqmin, vqmax);
          ((ByteVector) q.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, o + i);
          if (pack) {
            nibbles(q).intoArray(packed4, (o + i) / 2);
          }
        }
      }
    }
    if (packed4 != null && !pack) {
      QuantKernels.pack4(codes, off, groups * g, packed4, off / 2);
    }
  }
}
