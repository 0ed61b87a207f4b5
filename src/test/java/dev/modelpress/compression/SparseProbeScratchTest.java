package dev.modelpress.compression;

import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.*;
import dev.modelpress.testing.OnnxGraphBuilder;
import dev.modelpress.testing.OrtRunner;
import java.nio.*;
import java.nio.file.*;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SparseProbeScratchTest {
  @TempDir Path dir;

  @Test
  void probe() throws Exception {
    int k = 256, n = 128;
    float[] w = OnnxGraphBuilder.randomFloats(1, k * n, 1f);
    for (int i = 0; i < w.length; i++) if (Math.abs(w[i]) < 0.5f) w[i] = 0;
    int nnz = 0; for (float v : w) if (v != 0) nnz++;
    float[] vals = new float[nnz]; long[] idx = new long[nnz]; int j = 0;
    for (int i = 0; i < w.length; i++) if (w[i] != 0) { vals[j] = w[i]; idx[j++] = i; }
    float[] x = OnnxGraphBuilder.randomFloats(2, k, 1f);
    ModelProto dense = OnnxGraphBuilder.opset(13).input("x", 1, k).initializer("W", w, k, n).matMul("x", "W", "y").output("y").build();
    float[] ref;
    try (OrtRunner r = new OrtRunner(OnnxGraphBuilder.write(dense, dir))) { ref = r.run("y", "x", x, 1, k); }
    for (TensorProto.DataType t : new TensorProto.DataType[] {TensorProto.DataType.INT64, TensorProto.DataType.INT32, TensorProto.DataType.INT16, TensorProto.DataType.INT8}) {
      int width = switch (t) { case INT64 -> 8; case INT32 -> 4; case INT16 -> 2; default -> 1; };
      ByteBuffer b = ByteBuffer.allocate(nnz * width).order(ByteOrder.LITTLE_ENDIAN);
      for (long v : idx) { switch (width) { case 8 -> b.putLong(v); case 4 -> b.putInt((int) v); case 2 -> b.putShort((short) v); default -> b.put((byte) v);} }
      TensorProto indices = TensorProto.newBuilder().setName("W_idx").setDataType(t.getNumber()).addDims(nnz).setRawData(com.google.protobuf.ByteString.copyFrom(b.array())).build();
      SparseTensorProto sp = SparseTensorProto.newBuilder().setValues(OnnxTensors.floatTensor("W", vals, nnz)).setIndices(indices).addDims(k).addDims(n).build();
      GraphProto.Builder g = dense.getGraph().toBuilder().clearInitializer().addSparseInitializer(sp);
      ModelProto m = dense.toBuilder().setGraph(g).build();
      Path f = dir.resolve("s" + width + ".onnx");
      dev.modelpress.format.onnx.OnnxModels.write(m, f);
      try (OrtRunner r = new OrtRunner(f)) {
        float[] y = r.run("y", "x", x, 1, k);
        double maxd = 0; for (int i = 0; i < y.length; i++) maxd = Math.max(maxd, Math.abs(y[i] - ref[i]));
        System.out.println(t + " loads; bytes " + Files.size(f) + " dense " + 4L * w.length + " nnz " + nnz + " maxdiff " + maxd);
      } catch (Exception e) {
        System.out.println(t + " FAILS: " + e.getMessage());
      }
    }
    for (double sp : new double[] {0.5, 0.8}) {
      float[] big = OnnxGraphBuilder.randomFloats(5, 1 << 20, 1f);
      float[] sorted = big.clone(); for (int i = 0; i < sorted.length; i++) sorted[i] = Math.abs(sorted[i]); java.util.Arrays.sort(sorted);
      float th = sorted[(int) (sp * big.length)];
      for (int i = 0; i < big.length; i++) if (Math.abs(big[i]) < th) big[i] = 0;
      ByteBuffer raw = ByteBuffer.allocate(big.length * 4).order(ByteOrder.LITTLE_ENDIAN); raw.asFloatBuffer().put(big);
      for (int level : new int[] {1, 6, 9}) {
        java.io.ByteArrayOutputStream bos = new java.io.ByteArrayOutputStream();
        java.util.zip.Deflater d = new java.util.zip.Deflater(level);
        try (java.util.zip.DeflaterOutputStream z = new java.util.zip.DeflaterOutputStream(bos, d)) { z.write(raw.array()); }
        System.out.printf("sparsity %.1f deflate level %d: %d -> %d (%.3f)%n", sp, level, raw.capacity(), bos.size(), bos.size() / (double) raw.capacity());
      }
      int nz = 0; for (float v : big) if (v != 0) nz++;
      System.out.printf("sparsity %.1f sparse int64: %.3f int32: %.3f%n", sp, nz * 12.0 / raw.capacity(), nz * 8.0 / raw.capacity());
    }
  }
}
