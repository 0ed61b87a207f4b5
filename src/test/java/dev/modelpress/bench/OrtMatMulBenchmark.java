package dev.modelpress.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.modelpress.compression.OnnxPipeline;
import dev.modelpress.compression.Progress;
import dev.modelpress.compression.QuantizeSpec;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * ONNX Runtime latency of one MiniLM-sized transformer block's MatMuls (x [tokens, 384] · Q, K, V,
 * O [384, 384] · FFN [384, 1536] · [1536, 384]) with int4 group-32 weights written two ways from the
 * same opset-21 model: {@code DequantizeLinear} (opset 21, INT4 with {@code block_size}) feeding
 * MatMul, and {@code com.microsoft.MatMulNBits}; fp32 as the baseline. One intra-op thread, all
 * graph optimizations (what a deployment gets).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class OrtMatMulBenchmark {

  @Param({"fp32", "dq21-int4", "matmulnbits-int4"})
  public String encoding;

  @Param({"1", "128"})
  public int tokens;

  private OrtEnvironment env;
  private OrtSession session;
  private OnnxTensor input;
  private Path file;

  /** The block: six chained MatMuls, opset 21. */
  static ModelProto block() {
    OnnxGraphBuilder b = OnnxGraphBuilder.opset(21).irVersion(10).inputSymbolic("x",
        dev.modelpress.model.onnx.proto.OnnxProto.TensorProto.DataType.FLOAT, "tokens", 384);
    long[][] shapes = {{384, 384}, {384, 384}, {384, 384}, {384, 384}, {384, 1536}, {1536, 384}};
    String in = "x";
    for (int i = 0; i < shapes.length; i++) {
      int n = (int) (shapes[i][0] * shapes[i][1]);
      b.initializer("W" + i, OnnxGraphBuilder.randomFloats(i + 1, n, 0.05f), shapes[i]);
      String out = i == shapes.length - 1 ? "y" : "h" + i;
      b.matMul(in, "W" + i, out);
      in = out;
    }
    return b.output("y").build();
  }

  static ModelProto encode(String encoding) {
    ModelProto fp32 = block();
    if (encoding.equals("fp32")) {
      return fp32;
    }
    QuantizeSpec.Format format = encoding.startsWith("dq21") ? QuantizeSpec.Format.QDQ : QuantizeSpec.Format.MATMULNBITS;
    QuantizeSpec spec = QuantizeSpec.integer(4, true, QuantizeSpec.Granularity.GROUP, 32, QuantizeSpec.RangeMethod.MINMAX)
        .with(true, QuantizeSpec.Scheme.INTEGER, format);
    return OnnxPipeline.run(fp32, List.of(spec), Progress.NONE).model();
  }

  @Setup
  public void open() throws Exception {
    env = OrtEnvironment.getEnvironment();
    file = Files.createTempFile("ort-bench", ".onnx");
    OnnxModels.write(encode(encoding), file);
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      session = env.createSession(file.toString(), options);
    }
    input = OnnxTensor.createTensor(env, FloatBuffer.wrap(OnnxGraphBuilder.randomFloats(9, tokens * 384, 1f)),
        new long[] {tokens, 384});
  }

  @TearDown
  public void close() throws Exception {
    input.close();
    session.close();
    Files.deleteIfExists(file);
  }

  @Benchmark
  public float run() throws OrtException {
    try (OrtSession.Result r = session.run(Map.of("x", input))) {
      return ((OnnxTensor) r.get(0)).getFloatBuffer().get(0);
    }
  }
}
