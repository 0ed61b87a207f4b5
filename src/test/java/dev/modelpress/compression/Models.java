package dev.modelpress.compression;

import dev.modelpress.format.onnx.OnnxTensors;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.util.List;

/** Small models and initializer access shared by the compression tests. */
final class Models {

  private Models() {}

  /** x[1,32] -> MatMul W1[32,40] -> Relu -> MatMul W2[40,24] -> Add b2[24] -> MatMul W3[24,16] -> y. */
  static ModelProto mlp(long opset, float[] w1, float[] w2, float[] w3) {
    return OnnxGraphBuilder.opset(opset)
        .input("x", 1, 32)
        .initializer("W1", w1, 32, 40)
        .initializer("W2", w2, 40, 24)
        .initializer("b2", OnnxGraphBuilder.randomFloats(9, 24, 0.1f), 24)
        .initializer("W3", w3, 24, 16)
        .matMul("x", "W1", "h1")
        .relu("h1", "a1")
        .matMul("a1", "W2", "h2")
        .add("h2", "b2", "a2")
        .matMul("a2", "W3", "y")
        .output("y")
        .build();
  }

  static ModelProto mlp(long opset) {
    return mlp(opset,
        OnnxGraphBuilder.randomFloats(1, 32 * 40, 1f),
        OnnxGraphBuilder.randomFloats(2, 40 * 24, 0.1f),
        OnnxGraphBuilder.randomFloats(3, 24 * 16, 5f));
  }

  /**
   * The spec with every tensor named W... included: these small models end in their classifier,
   * which pruning leaves alone unless an include names it.
   */
  static PruneSpec weights(PruneSpec spec) {
    return spec.withSelection(List.of("W.*"), List.of());
  }

  static TensorProto initializer(ModelProto m, String name) {
    return m.getGraph().getInitializerList().stream()
        .filter(t -> t.getName().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError("no initializer " + name));
  }

  static boolean hasInitializer(ModelProto m, String name) {
    return m.getGraph().getInitializerList().stream().anyMatch(t -> t.getName().equals(name));
  }

  static float[] floats(ModelProto m, String name) {
    return OnnxTensors.toFloats(initializer(m, name));
  }

  static byte[] int8(ModelProto m, String name) {
    return initializer(m, name).getRawData().toByteArray();
  }

  static List<String> opTypes(ModelProto m) {
    return m.getGraph().getNodeList().stream().map(NodeProto::getOpType).toList();
  }

  static int zeros(float[] a) {
    int z = 0;
    for (float v : a) {
      z += v == 0f ? 1 : 0;
    }
    return z;
  }
}
