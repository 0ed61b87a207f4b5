package dev.modelpress.training;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The trainer's whole state after an epoch: resuming from it and training to the end gives the
 * same weights, bit for bit, as a run that was never interrupted. The shuffle of each epoch is
 * derived from the seed and the epoch number, so no generator state needs saving.
 *
 * <p>Per tensor: the parameters (the fp32 shadow weights under quantization-aware training, from
 * which the graph's values are re-derived), Adam's moments, the sparsity mask, and the best
 * validation epoch's weights when early stopping keeps them.
 *
 * <p>{@link #toBytes()} format, version {@value #VERSION}: the magic {@code MPCKPT}, a big-endian
 * u16 version, a u64 payload length, the payload, and the payload's CRC-32C. {@link #fromBytes}
 * rejects a wrong magic, an unknown version, a truncated or extended file and a checksum mismatch
 * with a message that says which.
 */
public final class Checkpoint {

  static final int VERSION = 1;
  private static final byte[] MAGIC = "MPCKPT".getBytes(StandardCharsets.US_ASCII);
  private static final int HEADER = MAGIC.length + 2 + 8;

  /** One trainable tensor's state; {@code mask} and {@code best} may be null. */
  record TensorState(String name, long[] shape, float[] weights, float[] m, float[] v, boolean[] mask, float[] best) {}

  private final long seed;
  private final int trainSamples;
  private final int epoch;
  private final long step;
  private final int bestEpoch;
  private final double bestMetric;
  private final int epochsSinceBest;
  private final List<EpochStats> history;
  private final List<TensorState> tensors;

  Checkpoint(long seed, int trainSamples, int epoch, long step, int bestEpoch, double bestMetric, int epochsSinceBest,
      List<EpochStats> history, List<TensorState> tensors) {
    this.seed = seed;
    this.trainSamples = trainSamples;
    this.epoch = epoch;
    this.step = step;
    this.bestEpoch = bestEpoch;
    this.bestMetric = bestMetric;
    this.epochsSinceBest = epochsSinceBest;
    this.history = List.copyOf(history);
    this.tensors = List.copyOf(tensors);
  }

  /** The last completed epoch (1-based). */
  public int epoch() {
    return epoch;
  }

  /** Adam steps taken so far. */
  public long step() {
    return step;
  }

  /** The seed of the run; a resumed run must use the same. */
  public long seed() {
    return seed;
  }

  /** The epoch with the best validation metric so far, 0 without validation. */
  public int bestEpoch() {
    return bestEpoch;
  }

  /** The best validation metric so far, {@code NaN} without validation. */
  public double bestMetric() {
    return bestMetric;
  }

  /** Epochs since the best one. */
  public int epochsSinceBest() {
    return epochsSinceBest;
  }

  /** One entry per completed epoch. */
  public List<EpochStats> history() {
    return history;
  }

  /** The trained tensors' names, in training order. */
  public List<String> tensorNames() {
    return tensors.stream().map(TensorState::name).toList();
  }

  int trainSamples() {
    return trainSamples;
  }

  List<TensorState> tensors() {
    return tensors;
  }

  /** The versioned, checksummed binary form. */
  public byte[] toBytes() {
    ByteArrayOutputStream payload = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(payload)) {
      out.writeLong(seed);
      out.writeInt(trainSamples);
      out.writeInt(epoch);
      out.writeLong(step);
      out.writeInt(bestEpoch);
      out.writeDouble(bestMetric);
      out.writeInt(epochsSinceBest);
      out.writeInt(history.size());
      for (EpochStats s : history) {
        out.writeInt(s.epoch());
        out.writeDouble(s.trainLoss());
        out.writeDouble(s.validationLoss());
        out.writeDouble(s.validationMetric());
        out.writeDouble(s.learningRate());
      }
      out.writeInt(tensors.size());
      for (TensorState t : tensors) {
        out.writeUTF(t.name());
        out.writeInt(t.shape().length);
        for (long d : t.shape()) {
          out.writeLong(d);
        }
        writeFloats(out, t.weights());
        writeFloats(out, t.m());
        writeFloats(out, t.v());
        out.writeBoolean(t.mask() != null);
        if (t.mask() != null) {
          byte[] bits = new byte[(t.mask().length + 7) / 8];
          for (int i = 0; i < t.mask().length; i++) {
            if (t.mask()[i]) {
              bits[i >> 3] |= (byte) (1 << (i & 7));
            }
          }
          out.write(bits);
        }
        out.writeBoolean(t.best() != null);
        if (t.best() != null) {
          writeFloats(out, t.best());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    byte[] body = payload.toByteArray();
    CRC32C crc = new CRC32C();
    crc.update(body);
    ByteBuffer file = ByteBuffer.allocate(HEADER + body.length + 4).order(ByteOrder.BIG_ENDIAN);
    file.put(MAGIC).putShort((short) VERSION).putLong(body.length).put(body).putInt((int) crc.getValue());
    return file.array();
  }

  /**
   * Reads {@link #toBytes()}'s format.
   *
   * @throws IllegalArgumentException naming what is wrong when the bytes are not an intact checkpoint
   */
  public static Checkpoint fromBytes(byte[] bytes) {
    if (bytes.length < HEADER + 4 || !Arrays.equals(bytes, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
      throw new IllegalArgumentException("not a modelpress training checkpoint (no MPCKPT header)");
    }
    ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN).position(MAGIC.length);
    int version = Short.toUnsignedInt(in.getShort());
    if (version != VERSION) {
      throw new IllegalArgumentException("training checkpoint version " + version + " is not supported (this build reads "
          + VERSION + ")");
    }
    long length = in.getLong();
    if (length != bytes.length - HEADER - 4L) {
      throw new IllegalArgumentException("training checkpoint is truncated or has trailing bytes: header declares "
          + length + " payload bytes, the file holds " + (bytes.length - HEADER - 4L));
    }
    CRC32C crc = new CRC32C();
    crc.update(bytes, HEADER, (int) length);
    int stored = ByteBuffer.wrap(bytes, HEADER + (int) length, 4).order(ByteOrder.BIG_ENDIAN).getInt();
    if (stored != (int) crc.getValue()) {
      throw new IllegalArgumentException(String.format(
          "training checkpoint is corrupt: CRC-32C of the payload is %08x, the file says %08x", (int) crc.getValue(),
          stored));
    }
    try (DataInputStream d = new DataInputStream(new ByteArrayInputStream(bytes, HEADER, (int) length))) {
      long seed = d.readLong();
      int trainSamples = d.readInt();
      int epoch = d.readInt();
      long step = d.readLong();
      int bestEpoch = d.readInt();
      double bestMetric = d.readDouble();
      int since = d.readInt();
      int h = d.readInt();
      List<EpochStats> history = new ArrayList<>();
      for (int i = 0; i < h; i++) {
        history.add(new EpochStats(d.readInt(), d.readDouble(), d.readDouble(), d.readDouble(), d.readDouble()));
      }
      int n = d.readInt();
      List<TensorState> tensors = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        String name = d.readUTF();
        long[] shape = new long[d.readInt()];
        for (int k = 0; k < shape.length; k++) {
          shape[k] = d.readLong();
        }
        float[] w = readFloats(d);
        float[] m = readFloats(d);
        float[] v = readFloats(d);
        boolean[] mask = null;
        if (d.readBoolean()) {
          byte[] bits = new byte[(w.length + 7) / 8];
          d.readFully(bits);
          mask = new boolean[w.length];
          for (int k = 0; k < w.length; k++) {
            mask[k] = (bits[k >> 3] & (1 << (k & 7))) != 0;
          }
        }
        float[] best = d.readBoolean() ? readFloats(d) : null;
        tensors.add(new TensorState(name, shape, w, m, v, mask, best));
      }
      if (d.available() != 0) {
        throw new IllegalArgumentException("training checkpoint has " + d.available() + " unread payload bytes");
      }
      return new Checkpoint(seed, trainSamples, epoch, step, bestEpoch, bestMetric, since, history, tensors);
    } catch (EOFException e) {
      throw new IllegalArgumentException("training checkpoint payload ends early: its structure does not match", e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void writeFloats(DataOutputStream out, float[] values) throws IOException {
    out.writeInt(values.length);
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.BIG_ENDIAN);
    b.asFloatBuffer().put(values);
    out.write(b.array());
  }

  private static float[] readFloats(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > in.available() / 4) {
      throw new IllegalArgumentException("training checkpoint declares " + n + " floats where fewer bytes remain");
    }
    byte[] raw = new byte[n * 4];
    in.readFully(raw);
    float[] out = new float[n];
    ByteBuffer.wrap(raw).order(ByteOrder.BIG_ENDIAN).asFloatBuffer().get(out);
    return out;
  }
}
