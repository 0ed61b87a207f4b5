package dev.modelpress.compression;

import java.io.ByteArrayOutputStream;
import java.util.PriorityQueue;

/**
 * A canonical Huffman code over symbols {@code 0..n-1}, described completely by its code lengths
 * (one byte per symbol, 0 = absent), so an archive stores only the lengths. Codes are assigned in
 * order of (length, symbol) and written most-significant bit first. Lengths are limited to
 * {@link #MAX_LENGTH} bits by halving the frequencies until the tree fits, which costs a fraction
 * of a percent on skewed distributions and keeps the decoder's tables small.
 */
final class HuffmanCode {

  static final int MAX_LENGTH = 24;

  private final int[] lengths;
  private final int[] codes;
  // Decoding tables: per length, the first canonical code, how many codes, and where their symbols
  // start in the (length, symbol)-sorted symbol list.
  private final int[] firstCode = new int[MAX_LENGTH + 2];
  private final int[] countOfLength = new int[MAX_LENGTH + 2];
  private final int[] firstIndex = new int[MAX_LENGTH + 2];
  private final int[] sorted;

  private HuffmanCode(int[] lengths) {
    this.lengths = lengths;
    this.codes = new int[lengths.length];
    for (int len : lengths) {
      if (len < 0 || len > MAX_LENGTH) {
        throw new IllegalArgumentException("code length " + len + " out of range");
      }
      countOfLength[len]++;
    }
    countOfLength[0] = 0;
    int used = 0;
    for (int len = 1; len <= MAX_LENGTH; len++) {
      used += countOfLength[len];
    }
    sorted = new int[used];
    int code = 0;
    int index = 0;
    for (int len = 1; len <= MAX_LENGTH; len++) {
      firstCode[len] = code;
      firstIndex[len] = index;
      for (int s = 0; s < lengths.length; s++) {
        if (lengths[s] == len) {
          codes[s] = code++;
          sorted[index++] = s;
        }
      }
      code <<= 1;
    }
  }

  /** The code for these symbol frequencies (symbols with frequency 0 get no code). */
  static HuffmanCode fromFrequencies(long[] freq) {
    long[] f = freq.clone();
    while (true) {
      int[] lengths = lengths(f);
      int max = 0;
      for (int l : lengths) {
        max = Math.max(max, l);
      }
      if (max <= MAX_LENGTH) {
        return new HuffmanCode(lengths);
      }
      for (int i = 0; i < f.length; i++) {
        f[i] = f[i] == 0 ? 0 : (f[i] + 1) / 2;
      }
    }
  }

  /** The code these lengths describe, as read back from an archive. */
  static HuffmanCode fromLengths(int[] lengths) {
    return new HuffmanCode(lengths.clone());
  }

  int[] lengths() {
    return lengths.clone();
  }

  /** Bits the symbols would take, for the given frequencies. */
  long bits(long[] freq) {
    long b = 0;
    for (int s = 0; s < freq.length; s++) {
      b += freq[s] * lengths[s];
    }
    return b;
  }

  private static int[] lengths(long[] f) {
    int n = f.length;
    int[] lengths = new int[n];
    // Tree nodes: leaves 0..n-1, internal n..; parent links give each leaf's depth.
    int[] parent = new int[2 * n];
    long[] weight = new long[2 * n];
    PriorityQueue<Integer> heap = new PriorityQueue<>((a, b) ->
        weight[a] != weight[b] ? Long.compare(weight[a], weight[b]) : Integer.compare(a, b));
    for (int s = 0; s < n; s++) {
      if (f[s] > 0) {
        weight[s] = f[s];
        heap.add(s);
      }
    }
    if (heap.size() == 1) {
      lengths[heap.poll()] = 1; // a lone symbol still needs one bit per occurrence
      return lengths;
    }
    int next = n;
    while (heap.size() > 1) {
      int a = heap.poll();
      int b = heap.poll();
      weight[next] = weight[a] + weight[b];
      parent[a] = next;
      parent[b] = next;
      heap.add(next++);
    }
    int root = next - 1;
    for (int s = 0; s < n; s++) {
      if (f[s] > 0) {
        int d = 0;
        for (int x = s; x != root; x = parent[x]) {
          d++;
        }
        lengths[s] = d;
      }
    }
    return lengths;
  }

  /** Writes codes most-significant bit first into a growing byte array. */
  static final class BitWriter {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private long acc;
    private int bits;

    void write(HuffmanCode code, int symbol) {
      int len = code.lengths[symbol];
      if (len == 0) {
        throw new IllegalArgumentException("symbol " + symbol + " has no code");
      }
      acc = (acc << len) | code.codes[symbol];
      bits += len;
      while (bits >= 8) {
        bits -= 8;
        out.write((int) (acc >>> bits));
      }
    }

    byte[] finish() {
      if (bits > 0) {
        out.write((int) (acc << (8 - bits)));
        bits = 0;
      }
      return out.toByteArray();
    }
  }

  /** Reads symbols back from the bytes a {@link BitWriter} produced. */
  static final class BitReader {
    private final byte[] in;
    private long pos; // in bits

    BitReader(byte[] in) {
      this.in = in;
    }

    int read(HuffmanCode code) {
      int c = 0;
      for (int len = 1; len <= MAX_LENGTH; len++) {
        long byteAt = pos >>> 3;
        if (byteAt >= in.length) {
          throw new IllegalStateException("the coded stream ends inside a code");
        }
        int bit = (in[(int) byteAt] >>> (7 - (int) (pos & 7))) & 1;
        pos++;
        c = (c << 1) | bit;
        int offset = c - code.firstCode[len];
        if (offset >= 0 && offset < code.countOfLength[len]) {
          return code.sorted[code.firstIndex[len] + offset];
        }
      }
      throw new IllegalStateException("no code matches the stream");
    }
  }
}
