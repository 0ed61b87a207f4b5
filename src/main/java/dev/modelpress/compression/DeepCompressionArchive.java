package dev.modelpress.compression;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;
import java.util.zip.Inflater;
import java.util.zip.InflaterInputStream;

/**
 * The storage stage of Deep Compression (Han, Mao and Dally, 2016): a pruned, weight-shared ONNX
 * model written as a compact archive ({@code model.dc}), and the decoder that turns the archive
 * back into a runnable ONNX model.
 *
 * <p>Every FLOAT initializer of at least {@value #MIN_ELEMENTS} elements with at most 256
 * distinct non-zero values (what a {@code share} step leaves), whose coded form is smaller than
 * its raw floats, is coded as: a codebook of float32
 * centroids; the positions of its non-zeros as relative indices (the number of zeros before each
 * non-zero, one symbol 0..254, with 255 as a filler that skips 255 zeros when a gap is longer);
 * and the codebook index of each non-zero. Both symbol streams are entropy-coded with their own
 * canonical Huffman code ({@link HuffmanCode}). Everything else (graph, biases, tensors that were
 * not shared) is the ONNX model itself with the coded tensors' data removed, deflated.
 *
 * <p>Layout (big-endian): magic {@code MPDC}, version byte, skeleton length + deflated skeleton,
 * tensor count, then per tensor: name, element count, codebook size k and k floats, 256 gap code
 * lengths, k index code lengths, gap-symbol count, non-zero count, and the two bit streams, each
 * with its byte length. Decoding gives back exactly the values the archive holds: codebook[index]
 * at each coded position, zero elsewhere.
 */
public final class DeepCompressionArchive {

  /** Smaller tensors are not worth a codebook and stay in the skeleton. */
  static final int MIN_ELEMENTS = 64;

  private static final byte[] MAGIC = {'M', 'P', 'D', 'C'};
  private static final int VERSION = 1;
  private static final int GAP_SYMBOLS = 256;
  private static final int FILLER = 255;

  private DeepCompressionArchive() {}

  /**
   * Sizes at each stage of the pipeline, for the tensors the archive codes (bytes).
   *
   * @param tensors tensors coded with a codebook
   * @param parameters their elements
   * @param nonZeros their non-zero elements
   * @param denseBytes as dense float32: 4 bytes per element
   * @param prunedBytes after pruning, stored sparse: an 8-bit relative index and a float32 value
   *     per non-zero (plus fillers)
   * @param sharedBytes after weight sharing: 8-bit relative indices, ceil(log2 k)-bit codebook
   *     indices, and the codebooks
   * @param codedBytes after Huffman coding of both streams, with code tables and codebooks
   * @param otherBytes the deflated rest of the model (graph, biases, unshared tensors)
   * @param archiveBytes the whole archive
   */
  public record Stats(int tensors, long parameters, long nonZeros, long denseBytes, long prunedBytes,
      long sharedBytes, long codedBytes, long otherBytes, long archiveBytes) {

    /** Dense fp32 over sparse storage: what pruning alone gives. */
    public double pruneRatio() {
      return (double) denseBytes / prunedBytes;
    }

    /** Dense fp32 over pruned + shared storage. */
    public double shareRatio() {
      return (double) denseBytes / sharedBytes;
    }

    /** Dense fp32 over pruned + shared + Huffman-coded storage. */
    public double codeRatio() {
      return (double) denseBytes / codedBytes;
    }
  }

  /** Writes the archive of {@code model} to {@code out} (not closed) and returns its sizes. */
  public static Stats write(ModelProto model, OutputStream out) throws IOException {
    GraphProto graph = model.getGraph();
    GraphProto.Builder skeleton = graph.toBuilder();
    ByteArrayOutputStream tensors = new ByteArrayOutputStream();
    DataOutputStream t = new DataOutputStream(tensors);
    int coded = 0;
    long parameters = 0;
    long nonZeros = 0;
    long dense = 0;
    long pruned = 0;
    long shared = 0;
    long entropy = 0;
    for (int i = 0; i < graph.getInitializerCount(); i++) {
      TensorProto tensor = graph.getInitializer(i);
      Coded c = code(tensor);
      // A codebook is worth it only when it beats the raw floats (not for a bias of distinct values).
      if (c == null || c.bytes() >= 4 * c.elements) {
        continue;
      }
      coded++;
      skeleton.setInitializer(i, tensor.toBuilder().clearRawData().clearFloatData());
      long before = t.size();
      t.writeUTF(tensor.getName());
      c.writeTo(t);
      long bytes = t.size() - before;
      long k = c.codebook.length;
      int indexBits = k <= 1 ? 1 : 64 - Long.numberOfLeadingZeros(k - 1);
      parameters += c.elements;
      nonZeros += c.nonZeros;
      dense += 4 * c.elements;
      pruned += c.gapCount + 4 * c.nonZeros;
      shared += c.gapCount + (c.nonZeros * indexBits + 7) / 8 + 4 * k;
      entropy += bytes;
    }
    byte[] skeletonBytes = deflate(model.toBuilder().setGraph(skeleton).build().toByteArray());
    DataOutputStream d = new DataOutputStream(out);
    d.write(MAGIC);
    d.writeByte(VERSION);
    d.writeInt(skeletonBytes.length);
    d.write(skeletonBytes);
    d.writeInt(coded);
    tensors.writeTo(d);
    d.flush();
    long archive = MAGIC.length + 1 + 4 + skeletonBytes.length + 4 + tensors.size();
    return new Stats(coded, parameters, nonZeros, dense, pruned, shared, entropy, skeletonBytes.length, archive);
  }

  /**
   * Decodes an archive into the ONNX model it holds: the coded tensors come back as FLOAT raw data
   * holding codebook values and zeros.
   *
   * @throws FormatException if the bytes are not an archive this version wrote, or are damaged
   */
  public static ModelProto decode(InputStream in) throws FormatException {
    try {
      DataInputStream d = new DataInputStream(in);
      byte[] magic = d.readNBytes(4);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new FormatException("not a Deep Compression archive (bad magic)");
      }
      int version = d.readUnsignedByte();
      if (version != VERSION) {
        throw new FormatException("Deep Compression archive version " + version + " is not supported");
      }
      byte[] skeletonBytes = readBytes(d, d.readInt(), "skeleton");
      ModelProto skeleton = ModelProto.parseFrom(inflate(skeletonBytes));
      int count = d.readInt();
      Map<String, float[]> values = new HashMap<>();
      for (int i = 0; i < count; i++) {
        String name = d.readUTF();
        values.put(name, Coded.read(d, name));
      }
      GraphProto.Builder g = skeleton.getGraph().toBuilder();
      for (int i = 0; i < g.getInitializerCount(); i++) {
        TensorProto tensor = g.getInitializer(i);
        float[] v = values.remove(tensor.getName());
        if (v != null) {
          if (v.length != OnnxTensors.elementCount(tensor.getDimsList())) {
            throw new FormatException("tensor '" + tensor.getName() + "' decodes to " + v.length
                + " values but its dims say " + tensor.getDimsList());
          }
          g.setInitializer(i, OnnxTensors.withFloats(tensor, v));
        }
      }
      if (!values.isEmpty()) {
        throw new FormatException("coded tensors " + values.keySet() + " are not in the model");
      }
      return skeleton.toBuilder().setGraph(g).build();
    } catch (EOFException e) {
      throw new FormatException("Deep Compression archive is truncated", e);
    } catch (IOException | DataFormatException | RuntimeException e) {
      throw new FormatException("Deep Compression archive is damaged: " + e.getMessage(), e);
    }
  }

  /** One tensor's codebook and coded streams. */
  private record Coded(long elements, float[] codebook, HuffmanCode gaps, HuffmanCode indices, long gapCount,
      long nonZeros, byte[] gapStream, byte[] indexStream) {

    /** Bytes {@link #writeTo} writes, without the name. */
    long bytes() {
      return 8 + 2 + 4L * codebook.length + GAP_SYMBOLS + codebook.length + 8 + 8 + 4 + gapStream.length + 4
          + indexStream.length;
    }

    void writeTo(DataOutputStream t) throws IOException {
      t.writeLong(elements);
      t.writeShort(codebook.length);
      for (float c : codebook) {
        t.writeFloat(c);
      }
      for (int l : gaps.lengths()) {
        t.writeByte(l);
      }
      for (int l : indices.lengths()) {
        t.writeByte(l);
      }
      t.writeLong(gapCount);
      t.writeLong(nonZeros);
      t.writeInt(gapStream.length);
      t.write(gapStream);
      t.writeInt(indexStream.length);
      t.write(indexStream);
    }

    static float[] read(DataInputStream d, String name) throws IOException, FormatException {
      long elements = d.readLong();
      int k = d.readUnsignedShort();
      if (elements < 0 || elements > Integer.MAX_VALUE - 8 || k == 0 || k > ShareSpec.MAX_CLUSTERS) {
        throw new FormatException("tensor '" + name + "' has an impossible header");
      }
      float[] codebook = new float[k];
      for (int j = 0; j < k; j++) {
        codebook[j] = d.readFloat();
      }
      int[] gapLengths = new int[GAP_SYMBOLS];
      for (int j = 0; j < GAP_SYMBOLS; j++) {
        gapLengths[j] = d.readUnsignedByte();
      }
      int[] indexLengths = new int[k];
      for (int j = 0; j < k; j++) {
        indexLengths[j] = d.readUnsignedByte();
      }
      long gapCount = d.readLong();
      long nonZeros = d.readLong();
      byte[] gapStream = readBytes(d, d.readInt(), "tensor '" + name + "' positions");
      byte[] indexStream = readBytes(d, d.readInt(), "tensor '" + name + "' indices");
      HuffmanCode.BitReader gaps = new HuffmanCode.BitReader(gapStream);
      HuffmanCode.BitReader indices = new HuffmanCode.BitReader(indexStream);
      HuffmanCode gapCode = HuffmanCode.fromLengths(gapLengths);
      HuffmanCode indexCode = HuffmanCode.fromLengths(indexLengths);
      float[] w = new float[(int) elements];
      long pos = 0;
      long placed = 0;
      for (long s = 0; s < gapCount; s++) {
        int gap = gaps.read(gapCode);
        pos += gap;
        if (gap == FILLER) {
          continue;
        }
        if (pos >= elements) {
          throw new FormatException("tensor '" + name + "' places a value past its end");
        }
        w[(int) pos++] = codebook[indices.read(indexCode)];
        placed++;
      }
      if (placed != nonZeros) {
        throw new FormatException("tensor '" + name + "' holds " + placed + " values, not " + nonZeros);
      }
      return w;
    }
  }

  /** Codes a tensor, or {@code null} if it is not a shared FLOAT tensor worth coding. */
  private static Coded code(TensorProto tensor) {
    if (tensor.getDataType() != TensorProto.DataType.FLOAT_VALUE || tensor.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
      return null;
    }
    long n = OnnxTensors.elementCount(tensor.getDimsList());
    if (n < MIN_ELEMENTS || n > Integer.MAX_VALUE - 8) {
      return null;
    }
    float[] w = OnnxTensors.toFloats(tensor);
    // Distinct non-zero values, sorted: the codebook. More than 256 means the tensor was not shared.
    float[] distinct = new float[ShareSpec.MAX_CLUSTERS + 1];
    int k = 0;
    for (float v : w) {
      if (v == 0f || Float.isNaN(v)) {
        if (Float.isNaN(v)) {
          return null;
        }
        continue;
      }
      int at = Arrays.binarySearch(distinct, 0, k, v);
      if (at < 0) {
        if (k == ShareSpec.MAX_CLUSTERS) {
          return null;
        }
        at = -at - 1;
        System.arraycopy(distinct, at, distinct, at + 1, k - at);
        distinct[at] = v;
        k++;
      }
    }
    if (k == 0) {
      k = 1; // an all-zero tensor: a one-entry codebook that no index refers to
    }
    float[] codebook = Arrays.copyOf(distinct, k);
    long[] gapFreq = new long[GAP_SYMBOLS];
    long[] indexFreq = new long[k];
    long nonZeros = 0;
    int gap = 0;
    for (float v : w) {
      if (v == 0f) {
        gap++;
        continue;
      }
      while (gap >= FILLER) {
        gapFreq[FILLER]++;
        gap -= FILLER;
      }
      gapFreq[gap]++;
      indexFreq[Arrays.binarySearch(codebook, v)]++;
      nonZeros++;
      gap = 0;
    }
    if (nonZeros == 0) {
      indexFreq[0] = 1; // keep the code table well-formed; it is never read
    }
    if (nonZeros == 0 && Arrays.stream(gapFreq).sum() == 0) {
      gapFreq[0] = 1;
    }
    HuffmanCode gapCode = HuffmanCode.fromFrequencies(gapFreq);
    HuffmanCode indexCode = HuffmanCode.fromFrequencies(indexFreq);
    HuffmanCode.BitWriter gaps = new HuffmanCode.BitWriter();
    HuffmanCode.BitWriter indices = new HuffmanCode.BitWriter();
    long gapCount = 0;
    gap = 0;
    for (float v : w) {
      if (v == 0f) {
        gap++;
        continue;
      }
      while (gap >= FILLER) {
        gaps.write(gapCode, FILLER);
        gapCount++;
        gap -= FILLER;
      }
      gaps.write(gapCode, gap);
      gapCount++;
      indices.write(indexCode, Arrays.binarySearch(codebook, v));
      gap = 0;
    }
    // Trailing zeros need no symbols: the element count says where the tensor ends.
    return new Coded(n, codebook, gapCode, indexCode, gapCount, nonZeros, gaps.finish(), indices.finish());
  }

  private static byte[] readBytes(DataInputStream d, int length, String what) throws IOException, FormatException {
    if (length < 0) {
      throw new FormatException(what + " has a negative length");
    }
    byte[] b = d.readNBytes(length);
    if (b.length != length) {
      throw new EOFException(what + " is truncated");
    }
    return b;
  }

  private static byte[] deflate(byte[] data) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Deflater deflater = new Deflater(Deflater.BEST_COMPRESSION);
    try (DeflaterOutputStream z = new DeflaterOutputStream(out, deflater)) {
      z.write(data);
    } finally {
      deflater.end();
    }
    return out.toByteArray();
  }

  private static byte[] inflate(byte[] data) throws IOException, DataFormatException {
    Inflater inflater = new Inflater();
    try (InflaterInputStream z = new InflaterInputStream(new java.io.ByteArrayInputStream(data), inflater)) {
      return z.readAllBytes();
    } finally {
      inflater.end();
    }
  }
}
