package dev.modelpress.training;

import dev.modelpress.compression.CompressionException;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.AttributeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TypeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.enums.PadMode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.convolution.Pooling2D;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Pooling2DConfig;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One translation of an ONNX graph into SameDiff: the state (values translated so far, with the
 * static shapes known for them) and one method per operator. See {@link OnnxTranslator} for the
 * public entry points and the semantics.
 */
final class GraphTranslation {

  /**
   * A translated ONNX value.
   *
   * @param var the SameDiff variable computing it
   * @param shape its static shape with -1 for dims known only at run time; null when even the rank
   *     is unknown
   * @param constant its value when known while translating (constant initializers and {@code
   *     Constant} nodes; never a trainable variable), else null
   */
  record Value(SDVariable var, long[] shape, INDArray constant) {

    int rank() {
      return shape == null ? -1 : shape.length;
    }
  }

  private final GraphProto graph;
  private final long opset;
  private final SameDiff sd = SameDiff.create();
  private final Map<String, Value> values = new HashMap<>();
  /** SameDiff variable names that already carry an ONNX name (never renamed again). */
  private final Set<String> named = new HashSet<>();
  /** Every value some node reads or the graph returns. */
  private final Set<String> consumed = new HashSet<>();
  private NodeProto node;

  private GraphTranslation(ModelProto model) {
    this.graph = model.getGraph();
    this.opset = OnnxModels.defaultOpset(model);
    for (NodeProto n : graph.getNodeList()) {
      consumed.addAll(n.getInputList());
    }
    graph.getOutputList().forEach(o -> consumed.add(o.getName()));
  }

  static TrainableGraph translate(ModelProto model, Set<String> trainable) {
    return new GraphTranslation(model).run(trainable);
  }

  private TrainableGraph run(Set<String> trainable) {
    Set<String> initializerNames = new HashSet<>();
    for (TensorProto t : graph.getInitializerList()) {
      initializerNames.add(t.getName());
      INDArray array = TensorArrays.toArray(t, "initializer '" + t.getName() + "'");
      long[] shape = array.shape();
      SDVariable v;
      if (trainable.contains(t.getName())) {
        v = sd.var(t.getName(), array);
        values.put(t.getName(), new Value(v, shape, null));
      } else {
        v = sd.constant(t.getName(), array);
        values.put(t.getName(), new Value(v, shape, array));
      }
      named.add(v.name());
    }
    List<String> inputs = new ArrayList<>();
    for (ValueInfoProto in : graph.getInputList()) {
      if (initializerNames.contains(in.getName())) {
        continue; // an initializer also listed as input (IR < 4): a weight, not a feed
      }
      inputs.add(in.getName());
      values.put(in.getName(), placeholder(in));
      named.add(in.getName());
    }
    for (NodeProto n : OnnxTranslator.topologicalOrder(graph)) {
      node = n;
      translateNode(n);
    }
    node = null;
    List<String> outputs = new ArrayList<>();
    Map<String, SDVariable> vars = new LinkedHashMap<>();
    values.forEach((name, value) -> vars.put(name, value.var()));
    for (ValueInfoProto out : graph.getOutputList()) {
      if (!values.containsKey(out.getName())) {
        throw new CompressionException("graph output '" + out.getName() + "' is not computed by any node");
      }
      outputs.add(out.getName());
    }
    return new TrainableGraph(sd, inputs, outputs, trainable, vars);
  }

  private Value placeholder(ValueInfoProto in) {
    TypeProto type = in.getType();
    if (!type.hasTensorType()) {
      throw new CompressionException("graph input '" + in.getName() + "' is not a tensor");
    }
    DataType dt = TensorArrays.dataType(type.getTensorType().getElemType());
    if (dt == null) {
      throw new CompressionException("graph input '" + in.getName() + "' has element type "
          + TensorProto.DataType.forNumber(type.getTensorType().getElemType())
          + "; training supports FLOAT, DOUBLE, INT64, INT32 and BOOL inputs");
    }
    if (!type.getTensorType().hasShape()) {
      throw new CompressionException("graph input '" + in.getName() + "' declares no shape; the translator needs"
          + " at least its rank");
    }
    List<TensorShapeProto.Dimension> dims = type.getTensorType().getShape().getDimList();
    long[] shape = new long[dims.size()];
    for (int i = 0; i < shape.length; i++) {
      // A symbolic or missing dim (batch, sequence length) stays free: -1 in SameDiff.
      shape[i] = dims.get(i).hasDimValue() ? dims.get(i).getDimValue() : -1;
    }
    return new Value(sd.placeHolder(in.getName(), dt, shape), shape, null);
  }

  // ---------------------------------------------------------------------------------------------
  // Dispatch

  private void translateNode(NodeProto n) {
    Value out = switch (n.getOpType()) {
      case "Add" -> binary(in(0), in(1), in(0).var().add(in(1).var()));
      case "Sub" -> binary(in(0), in(1), in(0).var().sub(in(1).var()));
      case "Mul" -> binary(in(0), in(1), in(0).var().mul(in(1).var()));
      case "Div" -> binary(in(0), in(1), in(0).var().div(in(1).var()));
      case "Pow" -> pow();
      case "Gemm" -> gemm();
      case "MatMul" -> matMul();
      case "Conv" -> conv();
      case "BatchNormalization" -> batchNorm();
      case "LayerNormalization" -> layerNorm();
      case "Relu" -> same(sd.nn().relu(in(0).var(), 0));
      case "LeakyRelu" -> same(sd.nn().leakyRelu(in(0).var(), floatAttr("alpha", 0.01f)));
      case "Sigmoid" -> same(sd.nn().sigmoid(in(0).var()));
      case "Tanh" -> same(sd.math().tanh(in(0).var()));
      case "Gelu" -> gelu();
      case "Erf" -> same(sd.math().erf(in(0).var()));
      case "Sqrt" -> same(sd.math().sqrt(in(0).var()));
      case "Exp" -> same(sd.math().exp(in(0).var()));
      case "Log" -> same(sd.math().log(in(0).var()));
      case "Neg" -> same(sd.math().neg(in(0).var()));
      case "Abs" -> same(sd.math().abs(in(0).var()));
      case "Reciprocal" -> same(in(0).var().rdiv(1.0));
      case "Clip" -> clip();
      case "Softmax" -> softmax(false);
      case "LogSoftmax" -> softmax(true);
      case "MaxPool" -> pool(true);
      case "AveragePool" -> pool(false);
      case "GlobalAveragePool" -> globalPool(false);
      case "GlobalMaxPool" -> globalPool(true);
      case "Flatten" -> flattenNode();
      case "Reshape" -> reshape();
      case "Transpose" -> transpose();
      case "Concat" -> concat();
      case "Unsqueeze" -> unsqueeze();
      case "Squeeze" -> squeeze();
      case "Dropout" -> dropout();
      case "Identity" -> same(sd.identity(in(0).var()));
      case "Constant" -> constantNode();
      case "Shape" -> shapeOf();
      case "Gather" -> gather();
      case "Cast" -> cast();
      case "Slice" -> slice();
      case "ReduceMean" -> reduce(false);
      case "ReduceSum" -> reduce(true);
      default -> throw new IllegalStateException("operator " + n.getOpType() + " passed the support check");
    };
    define(n.getOutput(0), out);
  }

  /** Records an ONNX value; names its SameDiff variable after it when the name is free. */
  private void define(String onnxName, Value v) {
    if (onnxName.isEmpty()) {
      return;
    }
    SDVariable var = v.var();
    if (!named.contains(var.name()) && !sd.hasVariable(onnxName)) {
      // ONNX names make the SameDiff graph readable and let a trainer find tensors by name.
      sd.renameVariable(var.name(), onnxName);
      var = sd.getVariable(onnxName);
      v = new Value(var, v.shape(), v.constant());
    }
    named.add(var.name());
    values.put(onnxName, v);
  }

  // ---------------------------------------------------------------------------------------------
  // Operators

  private Value binary(Value a, Value b, SDVariable out) {
    return new Value(out, broadcast(a.shape(), b.shape()), null);
  }

  private Value pow() {
    Value x = in(0);
    Value y = in(1);
    if (y.constant() != null && y.constant().length() == 1) {
      return binary(x, y, sd.math().pow(x.var(), y.constant().getDouble(0)));
    }
    return binary(x, y, sd.math().pow(x.var(), y.var()));
  }

  /** Shape-preserving unary result of input 0. */
  private Value same(SDVariable out) {
    return new Value(out, in(0).shape(), null);
  }

  private Value gemm() {
    Value a = in(0);
    Value b = in(1);
    boolean transA = intAttr("transA", 0) != 0;
    boolean transB = intAttr("transB", 0) != 0;
    double alpha = floatAttr("alpha", 1f);
    double beta = floatAttr("beta", 1f);
    requireRank(a, 2, "A");
    requireRank(b, 2, "B");
    SDVariable y = sd.mmul(a.var(), b.var(), transA, transB, false);
    if (alpha != 1) {
      y = y.mul(alpha);
    }
    long[] shape = {dim(a, transA ? 1 : 0), dim(b, transB ? 0 : 1)};
    if (has(2)) {
      SDVariable c = in(2).var();
      y = y.add(beta != 1 ? c.mul(beta) : c);
    }
    return new Value(y, shape, null);
  }

  private Value matMul() {
    Value a = in(0);
    Value b = in(1);
    int ra = a.rank();
    int rb = b.rank();
    if (ra < 1 || rb < 1) {
      throw fail("the ranks of its inputs are unknown");
    }
    if (ra == 1 || rb == 1) {
      // numpy semantics: a 1-D operand gains a dim for the product, which is dropped afterwards.
      SDVariable av = ra == 1 ? sd.expandDims(a.var(), 0) : a.var();
      SDVariable bv = rb == 1 ? sd.expandDims(b.var(), 1) : b.var();
      long[] as = ra == 1 ? new long[] {1, a.shape()[0]} : a.shape();
      long[] bs = rb == 1 ? new long[] {b.shape()[0], 1} : b.shape();
      Value p = product(new Value(av, as, null), new Value(bv, bs, null));
      SDVariable out = p.var();
      long[] shape = p.shape();
      if (rb == 1) {
        out = sd.squeeze(out, shape.length - 1);
        shape = Arrays.copyOf(shape, shape.length - 1);
      }
      if (ra == 1) {
        out = sd.squeeze(out, shape.length - 2);
        shape = remove(shape, shape.length - 2);
      }
      return new Value(out, shape, null);
    }
    return product(a, b);
  }

  /** Matrix product of operands of rank >= 2: plain, batched (same rank), or N-D times 2-D. */
  private Value product(Value a, Value b) {
    int ra = a.rank();
    int rb = b.rank();
    long n = b.shape()[rb - 1];
    if (ra == 2 && rb == 2) {
      return new Value(sd.mmul(a.var(), b.var()), new long[] {a.shape()[0], n}, null);
    }
    if (ra > 2 && rb == 2) {
      // [..., M, K] x [K, N]: fold the leading dims into the rows, multiply, unfold.
      long k = a.shape()[ra - 1] >= 0 ? a.shape()[ra - 1] : b.shape()[0];
      if (k < 0) {
        throw fail("the inner dimension of the product is unknown");
      }
      SDVariable rows = sd.reshape(a.var(), -1, k);
      SDVariable y = sd.mmul(rows, b.var());
      long[] shape = a.shape().clone();
      shape[ra - 1] = n;
      SDVariable target;
      if (known(shape, 0, ra - 1) && n >= 0) {
        target = longs(shape);
      } else {
        target = sd.concat(0, shapeSlice(a, 0, ra - 1), n >= 0 ? longs(n) : shapeSlice(b, 1, 2));
      }
      return new Value(sd.reshape(y, target), shape, null);
    }
    if (ra == rb) {
      long[] shape = a.shape().clone();
      shape[ra - 1] = n;
      for (int i = 0; i < ra - 2; i++) {
        long da = a.shape()[i];
        long db = b.shape()[i];
        if (da >= 0 && db >= 0 && da != db) {
          throw fail("batched MatMul with broadcast batch dims (" + Arrays.toString(a.shape()) + " x "
              + Arrays.toString(b.shape()) + ") is not supported");
        }
        shape[i] = da >= 0 ? da : db;
      }
      return new Value(sd.mmul(a.var(), b.var()), shape, null);
    }
    throw fail("MatMul of rank " + ra + " by rank " + rb + " is not supported");
  }

  private Value conv() {
    Value x = in(0);
    Value w = in(1);
    requireRank(x, 4, "X (only 2-D convolutions are supported)");
    requireRank(w, 4, "W");
    if (!known(w.shape(), 0, 4)) {
      throw fail("the weight's shape is unknown");
    }
    long outC = w.shape()[0];
    long inPerGroup = w.shape()[1];
    long kh = w.shape()[2];
    long kw = w.shape()[3];
    long group = intAttr("group", 1);
    long[] strides = intsAttr("strides", 1, 1);
    long[] dilations = intsAttr("dilations", 1, 1);
    long[] pads = pads(x, new long[] {kh, kw}, strides, dilations);
    SDVariable input = x.var();
    long[] conf = symmetricPads(pads);
    if (conf == null) {
      input = zeroPad(input, pads, 0);
      conf = new long[] {0, 0};
    }
    Conv2DConfig config = Conv2DConfig.builder()
        .kH(kh).kW(kw).sH(strides[0]).sW(strides[1]).pH(conf[0]).pW(conf[1])
        .dH(dilations[0]).dW(dilations[1])
        .dataFormat(Conv2DConfig.NCHW)
        .build();
    SDVariable bias = has(2) ? in(2).var() : null;
    long inC = x.shape()[1] >= 0 ? x.shape()[1] : inPerGroup * group;
    SDVariable y;
    if (group == 1) {
      // ONNX keeps W as [out, in, kh, kw]; SameDiff's conv2d wants [kh, kw, in, out].
      SDVariable weights = sd.permute(w.var(), 2, 3, 1, 0);
      y = bias == null ? sd.cnn().conv2d(input, weights, config) : sd.cnn().conv2d(input, weights, bias, config);
    } else if (group == inC && inPerGroup == 1) {
      // Depthwise: output channel c * multiplier + m reads input channel c, as in SameDiff's
      // [kh, kw, channels, multiplier] weights.
      long multiplier = outC / group;
      SDVariable weights = sd.permute(sd.reshape(w.var(), group, multiplier, kh, kw), 2, 3, 0, 1);
      y = bias == null
          ? sd.cnn().depthWiseConv2d(input, weights, config)
          : sd.cnn().depthWiseConv2d(input, weights, bias, config);
    } else {
      if (outC % group != 0 || inC % group != 0) {
        throw fail("group " + group + " does not divide the channels");
      }
      SDVariable[] xs = sd.split(input, (int) group, 1);
      SDVariable[] ws = sd.split(w.var(), (int) group, 0);
      SDVariable[] ys = new SDVariable[(int) group];
      for (int g = 0; g < group; g++) {
        ys[g] = sd.cnn().conv2d(xs[g], sd.permute(ws[g], 2, 3, 1, 0), config);
      }
      y = sd.concat(1, ys);
      if (bias != null) {
        y = y.add(sd.reshape(bias, outC, 1, 1));
      }
    }
    long[] shape = {x.shape()[0], outC,
        convOut(x.shape()[2], pads[0] + pads[2], kh, strides[0], dilations[0]),
        convOut(x.shape()[3], pads[1] + pads[3], kw, strides[1], dilations[1])};
    return new Value(y, shape, null);
  }

  private Value batchNorm() {
    if (intAttr("training_mode", 0) != 0) {
      throw fail("training_mode = 1 (batch statistics) is not supported; export the model in eval mode");
    }
    Value x = in(0);
    if (x.rank() < 2) {
      throw fail("its input's rank is unknown or below 2");
    }
    double eps = floatAttr("epsilon", 1e-5f);
    // Inference form: running mean and variance are constants, scale and bias train.
    long[] perChannel = new long[x.rank() - 1];
    Arrays.fill(perChannel, 1);
    perChannel[0] = -1;
    SDVariable scale = sd.reshape(in(1).var(), perChannel);
    SDVariable bias = sd.reshape(in(2).var(), perChannel);
    SDVariable mean = sd.reshape(in(3).var(), perChannel);
    SDVariable invStd = sd.math().rsqrt(sd.reshape(in(4).var(), perChannel).add(eps));
    SDVariable y = x.var().sub(mean).mul(scale.mul(invStd)).add(bias);
    return new Value(y, x.shape(), null);
  }

  private Value layerNorm() {
    Value x = in(0);
    int rank = x.rank();
    if (rank < 1) {
      throw fail("its input's rank is unknown");
    }
    int axis = axis(intAttr("axis", -1), rank);
    double eps = floatAttr("epsilon", 1e-5f);
    int[] axes = range(axis, rank);
    SDVariable mean = sd.mean(x.var(), true, axes);
    SDVariable centred = x.var().sub(mean);
    SDVariable variance = sd.mean(centred.mul(centred), true, axes);
    SDVariable invStd = sd.math().rsqrt(variance.add(eps));
    SDVariable y = centred.mul(invStd).mul(in(1).var());
    if (has(2)) {
      y = y.add(in(2).var());
    }
    long[] statShape = x.shape().clone();
    for (int a : axes) {
      statShape[a] = 1;
    }
    if (node.getOutputCount() > 1) {
      define(node.getOutput(1), new Value(mean, statShape, null));
    }
    if (node.getOutputCount() > 2) {
      define(node.getOutput(2), new Value(invStd, statShape, null));
    }
    return new Value(y, x.shape(), null);
  }

  private Value gelu() {
    SDVariable x = in(0).var();
    String approximate = stringAttr("approximate", "none");
    SDVariable inner = switch (approximate) {
      // 0.5 x (1 + erf(x / sqrt 2))
      case "none" -> sd.math().erf(x.mul(1 / Math.sqrt(2)));
      // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
      case "tanh" -> sd.math().tanh(x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI)));
      default -> throw fail("approximate = '" + approximate + "' is not 'none' or 'tanh'");
    };
    return same(x.mul(0.5).mul(inner.add(1.0)));
  }

  private Value clip() {
    double min;
    double max;
    if (opset < 11) {
      min = floatAttr("min", -Float.MAX_VALUE);
      max = floatAttr("max", Float.MAX_VALUE);
    } else {
      min = has(1) ? constant(1).getDouble(0) : -Float.MAX_VALUE;
      max = has(2) ? constant(2).getDouble(0) : Float.MAX_VALUE;
    }
    return same(sd.math().clipByValue(in(0).var(), min, max));
  }

  private Value softmax(boolean log) {
    Value x = in(0);
    int rank = x.rank();
    if (rank < 1) {
      throw fail("its input's rank is unknown");
    }
    int axis = axis(intAttr("axis", opset >= 13 ? -1 : 1), rank);
    if (opset >= 13 || axis == rank - 1) {
      return same(log ? sd.nn().logSoftmax(x.var(), axis) : sd.nn().softmax(x.var(), axis));
    }
    // Before opset 13 the input is coerced to 2-D at `axis` and normalised over the whole tail.
    SDVariable flat = flatten(x, axis);
    SDVariable y = log ? sd.nn().logSoftmax(flat, 1) : sd.nn().softmax(flat, 1);
    SDVariable back = known(x.shape(), 0, rank) ? sd.reshape(y, x.shape()) : sd.reshape(y, sd.shape(x.var()));
    return same(back);
  }

  private Value pool(boolean max) {
    Value x = in(0);
    requireRank(x, 4, "X (only 2-D pooling is supported)");
    if (intAttr("ceil_mode", 0) != 0) {
      throw fail("ceil_mode = 1 is not supported");
    }
    if (node.getOutputCount() > 1 && consumed.contains(node.getOutput(1))) {
      throw fail("its Indices output is not supported");
    }
    long[] kernel = intsAttr("kernel_shape");
    if (kernel == null || kernel.length != 2) {
      throw fail("kernel_shape must have two entries");
    }
    long[] strides = intsAttr("strides", 1, 1);
    long[] dilations = intsAttr("dilations", 1, 1);
    long[] pads = pads(x, kernel, strides, dilations);
    boolean includePad = intAttr("count_include_pad", 0) != 0;
    SDVariable input = x.var();
    long[] conf = symmetricPads(pads);
    if (conf == null) {
      if (!max && !includePad) {
        throw fail("asymmetric pads with count_include_pad = 0 are not supported");
      }
      // Max pooling never picks a padded cell; average pooling counting pads averages zeros.
      input = zeroPad(input, pads, max ? Double.NEGATIVE_INFINITY : 0);
      conf = new long[] {0, 0};
    }
    Pooling2DConfig config = Pooling2DConfig.builder()
        .kH(kernel[0]).kW(kernel[1]).sH(strides[0]).sW(strides[1]).pH(conf[0]).pW(conf[1])
        .dH(dilations[0]).dW(dilations[1])
        .divisor(includePad ? Pooling2D.Divisor.INCLUDE_PADDING : Pooling2D.Divisor.EXCLUDE_PADDING)
        .extra(includePad ? 1 : 0)
        .isNHWC(false)
        .build();
    SDVariable y = max ? sd.cnn().maxPooling2d(input, config) : sd.cnn().avgPooling2d(input, config);
    long[] shape = {x.shape()[0], x.shape()[1],
        convOut(x.shape()[2], pads[0] + pads[2], kernel[0], strides[0], dilations[0]),
        convOut(x.shape()[3], pads[1] + pads[3], kernel[1], strides[1], dilations[1])};
    return new Value(y, shape, null);
  }

  private Value globalPool(boolean max) {
    Value x = in(0);
    if (x.rank() < 3) {
      throw fail("its input's rank is unknown or below 3");
    }
    int[] spatial = range(2, x.rank());
    SDVariable y = max ? sd.max(x.var(), true, spatial) : sd.mean(x.var(), true, spatial);
    long[] shape = x.shape().clone();
    for (int a : spatial) {
      shape[a] = 1;
    }
    return new Value(y, shape, null);
  }

  private Value flattenNode() {
    Value x = in(0);
    if (x.rank() < 0) {
      throw fail("its input's rank is unknown");
    }
    long requested = intAttr("axis", 1);
    // Flatten's axis may be the rank itself (all dims become rows); negative counts from the back.
    int axis = (int) normalized(requested, x.rank());
    if (axis < 0 || axis > x.rank()) {
      throw fail("axis " + requested + " is out of range for rank " + x.rank());
    }
    return new Value(flatten(x, axis), new long[] {product(x.shape(), 0, axis), product(x.shape(), axis, x.rank())}, null);
  }

  private Value reshape() {
    Value x = in(0);
    long[] target;
    if (opset < 5) {
      target = intsAttr("shape");
      if (target == null) {
        throw fail("it has no shape attribute");
      }
    } else {
      Value s = in(1);
      if (s.constant() == null) {
        // A shape computed at run time (Shape -> Gather -> Concat, as exporters write for dynamic
        // batch and sequence dims): its length is the rank, its values come at run time.
        long[] shape = null;
        if (s.shape() != null && s.shape().length == 1 && s.shape()[0] >= 0) {
          shape = new long[(int) s.shape()[0]];
          Arrays.fill(shape, -1);
        }
        return new Value(sd.reshape(x.var(), s.var().castTo(DataType.LONG)), shape, null);
      }
      target = longs(s.constant());
    }
    boolean allowZero = intAttr("allowzero", 0) != 0;
    long[] dims = target.clone();
    boolean dynamic = false;
    for (int i = 0; i < dims.length; i++) {
      if (target[i] == 0) {
        if (allowZero) {
          throw fail("a zero-sized dim with allowzero = 1 is not supported");
        }
        // 0 copies the input's dim at the same index.
        if (x.shape() == null || i >= x.rank()) {
          throw fail("shape entry " + i + " is 0 but the input's rank is unknown or smaller");
        }
        dims[i] = x.shape()[i];
        dynamic |= dims[i] < 0;
      }
    }
    SDVariable y;
    if (!dynamic) {
      y = sd.reshape(x.var(), dims);
    } else {
      SDVariable[] parts = new SDVariable[dims.length];
      for (int i = 0; i < dims.length; i++) {
        parts[i] = dims[i] < 0 && target[i] == 0 ? shapeSlice(x, i, i + 1) : longs(dims[i]);
      }
      y = sd.reshape(x.var(), sd.concat(0, parts));
    }
    long[] shape = dims.clone();
    int unknown = -1;
    for (int i = 0; i < dims.length; i++) {
      if (target[i] == -1) {
        unknown = i;
      }
    }
    if (unknown >= 0 && x.shape() != null && known(x.shape(), 0, x.rank())) {
      long rest = 1;
      boolean restKnown = true;
      for (int i = 0; i < dims.length; i++) {
        if (i != unknown) {
          restKnown &= dims[i] >= 0;
          rest *= dims[i];
        }
      }
      if (restKnown && rest > 0) {
        shape[unknown] = product(x.shape(), 0, x.rank()) / rest;
      }
    }
    return new Value(y, shape, null);
  }

  private Value transpose() {
    Value x = in(0);
    long[] perm = intsAttr("perm");
    if (perm == null) {
      if (x.rank() < 0) {
        throw fail("it has no perm and its input's rank is unknown");
      }
      perm = new long[x.rank()];
      for (int i = 0; i < perm.length; i++) {
        perm[i] = perm.length - 1 - i;
      }
    }
    int[] p = Arrays.stream(perm).mapToInt(Math::toIntExact).toArray();
    long[] shape = null;
    if (x.shape() != null) {
      shape = new long[p.length];
      for (int i = 0; i < p.length; i++) {
        shape[i] = x.shape()[p[i]];
      }
    }
    return new Value(sd.permute(x.var(), p), shape, null);
  }

  private Value concat() {
    List<Value> parts = new ArrayList<>();
    for (int i = 0; i < node.getInputCount(); i++) {
      parts.add(in(i));
    }
    int rank = parts.getFirst().rank();
    long axisAttr = intAttr("axis", Long.MIN_VALUE);
    if (axisAttr == Long.MIN_VALUE) {
      throw fail("it has no axis attribute");
    }
    if (rank < 0 && axisAttr < 0) {
      throw fail("a negative axis needs the input's rank, which is unknown");
    }
    int axis = rank < 0 ? (int) axisAttr : axis(axisAttr, rank);
    SDVariable y = sd.concat(axis, parts.stream().map(Value::var).toArray(SDVariable[]::new));
    long[] shape = null;
    if (rank >= 0 && parts.stream().allMatch(v -> v.rank() == rank)) {
      shape = parts.getFirst().shape().clone();
      long sum = 0;
      for (Value v : parts) {
        long d = v.shape()[axis];
        sum = sum < 0 || d < 0 ? -1 : sum + d;
        for (int i = 0; i < rank; i++) {
          if (i != axis && shape[i] < 0) {
            shape[i] = v.shape()[i];
          }
        }
      }
      shape[axis] = sum;
    }
    return new Value(y, shape, null);
  }

  private Value unsqueeze() {
    Value x = in(0);
    long[] axes = opset >= 13 ? longs(constant(1)) : intsAttr("axes");
    if (axes == null || x.rank() < 0) {
      throw fail("its axes or its input's rank are unknown");
    }
    int outRank = x.rank() + axes.length;
    int[] sorted = Arrays.stream(axes).mapToInt(a -> axis(a, outRank)).sorted().toArray();
    SDVariable y = x.var();
    List<Long> shape = new ArrayList<>(Arrays.stream(x.shape()).boxed().toList());
    for (int a : sorted) {
      y = sd.expandDims(y, a);
      shape.add(a, 1L);
    }
    return new Value(y, shape.stream().mapToLong(Long::longValue).toArray(), null);
  }

  private Value squeeze() {
    Value x = in(0);
    if (x.rank() < 0) {
      throw fail("its input's rank is unknown");
    }
    long[] axes = opset >= 13 ? (has(1) ? longs(constant(1)) : null) : intsAttr("axes");
    if (axes == null) {
      List<Long> ones = new ArrayList<>();
      for (int i = 0; i < x.rank(); i++) {
        if (x.shape()[i] < 0) {
          throw fail("it has no axes and dim " + i + " of its input is known only at run time");
        }
        if (x.shape()[i] == 1) {
          ones.add((long) i);
        }
      }
      axes = ones.stream().mapToLong(Long::longValue).toArray();
    }
    int[] sorted = Arrays.stream(axes).mapToInt(a -> axis(a, x.rank())).sorted().toArray();
    SDVariable y = x.var();
    long[] shape = x.shape();
    for (int i = sorted.length - 1; i >= 0; i--) {
      y = sd.squeeze(y, sorted[i]);
      shape = remove(shape, sorted[i]);
    }
    return new Value(y, shape, null);
  }

  private Value dropout() {
    // Inference semantics: the translated graph computes what ONNX Runtime computes, so a trainer
    // sees the same function it was given.
    if (node.getOutputCount() > 1 && consumed.contains(node.getOutput(1))) {
      throw fail("its mask output is used, which an identity translation cannot provide");
    }
    return same(sd.identity(in(0).var()));
  }

  private Value constantNode() {
    INDArray value = null;
    for (AttributeProto a : node.getAttributeList()) {
      value = switch (a.getName()) {
        case "value" -> TensorArrays.toArray(a.getT(), "the value of Constant node " + describe(node));
        case "value_float" -> Nd4j.scalar(a.getF());
        case "value_floats" -> Nd4j.createFromArray(toFloatArray(a.getFloatsList()));
        case "value_int" -> Nd4j.scalar(a.getI());
        case "value_ints" -> Nd4j.createFromArray(a.getIntsList().stream().mapToLong(Long::longValue).toArray());
        default -> throw fail("its attribute '" + a.getName() + "' is not supported");
      };
    }
    if (value == null) {
      throw fail("it has no value");
    }
    return new Value(sd.constant(value), value.shape(), value);
  }

  private Value shapeOf() {
    Value x = in(0);
    if (x.rank() < 0) {
      throw fail("its input's rank is unknown");
    }
    // start and end count from the back when negative and are clamped to [0, rank].
    int start = (int) Math.clamp(normalized(intAttr("start", 0), x.rank()), 0, x.rank());
    int end = attr("end") == null ? x.rank() : (int) Math.clamp(normalized(intAttr("end", 0), x.rank()), 0, x.rank());
    SDVariable y = sd.shape(x.var());
    if (start != 0 || end != x.rank()) {
      y = sd.stridedSlice(y, new long[] {start}, new long[] {end}, 1);
    }
    return new Value(y, new long[] {Math.max(0, end - start)}, null);
  }

  private Value gather() {
    Value data = in(0);
    Value indices = in(1);
    if (data.rank() < 1 || indices.rank() < 0) {
      throw fail("the ranks of its inputs are unknown");
    }
    int axis = axis(intAttr("axis", 0), data.rank());
    SDVariable idx = indices.var();
    if (indices.constant() != null && indices.constant().minNumber().longValue() < 0) {
      long dim = data.shape()[axis];
      if (dim < 0) {
        throw fail("negative constant indices into a dim known only at run time are not supported");
      }
      // SameDiff's gather takes no negative indices; ONNX counts them from the end.
      INDArray fixed = indices.constant().castTo(DataType.LONG).dup();
      for (long i = 0; i < fixed.length(); i++) {
        long v = fixed.getLong(i);
        fixed.putScalar(i, v < 0 ? v + dim : v);
      }
      idx = sd.constant(fixed);
    }
    long[] shape = new long[data.rank() - 1 + indices.rank()];
    int k = 0;
    for (int i = 0; i < axis; i++) {
      shape[k++] = data.shape()[i];
    }
    for (long d : indices.shape()) {
      shape[k++] = d;
    }
    for (int i = axis + 1; i < data.rank(); i++) {
      shape[k++] = data.shape()[i];
    }
    return new Value(lookup(data, indices, idx, axis), shape, null);
  }

  /**
   * Gather, in a form SameDiff differentiates correctly. ND4J 1.0.0-M2.1 differentiates its
   * {@code gather} with a loop of {@code put} writes in a sub-function of a fixed name: a second
   * gather in the graph fails to differentiate ("Unable to replace samediff namespace"), and a
   * repeated index (padding, position and token-type ids repeat in every batch) keeps one
   * contribution instead of their sum. So only data that needs no gradient (integer tensors,
   * constants) goes through {@code gather}; a constant scalar index becomes a strided slice, and
   * other lookups into a weight or activation a one-hot product along axis 0, whose gradient is the
   * exact sum ({@code onehot^T . dY}) at the cost of a [lookups, rows] matrix.
   */
  private SDVariable lookup(Value data, Value indices, SDVariable idx, int axis) {
    if (!data.var().dataType().isFPType() || data.constant() != null) {
      return sd.gather(data.var(), idx, axis);
    }
    int rank = data.rank();
    if (indices.constant() != null && indices.rank() == 0) {
      long i = idx.getArr().getLong(0);
      long[] begin = new long[rank];
      long[] end = new long[rank];
      long[] strides = new long[rank];
      Arrays.fill(strides, 1);
      begin[axis] = i;
      end[axis] = i + 1;
      int all = ((1 << rank) - 1) & ~(1 << axis);
      return sd.stridedSlice(data.var(), begin, end, strides, all, all, 0, 0, 1 << axis);
    }
    if (axis != 0 || data.shape()[0] < 0) {
      throw fail("a lookup along axis " + axis + " of a tensor that needs gradients is not supported"
          + " (only axis 0 of a tensor with a known first dim)");
    }
    long rows = data.shape()[0];
    SDVariable oneHot = sd.oneHot(idx, Math.toIntExact(rows), -1, 1.0, 0.0, data.var().dataType());
    SDVariable table = rank == 2 ? data.var() : sd.reshape(data.var(), rows, -1);
    SDVariable flat = sd.mmul(sd.reshape(oneHot, -1, rows), table);
    long[] tail = Arrays.copyOfRange(data.shape(), 1, rank);
    long[] outShape = new long[indices.rank() + tail.length];
    System.arraycopy(indices.shape(), 0, outShape, 0, indices.rank());
    System.arraycopy(tail, 0, outShape, indices.rank(), tail.length);
    if (known(outShape, 0, outShape.length)) {
      return sd.reshape(flat, outShape);
    }
    SDVariable tailShape = known(tail, 0, tail.length) ? longs(tail) : shapeSlice(data, 1, rank);
    return sd.reshape(flat, sd.concat(0, sd.shape(indices.var()), tailShape));
  }

  private Value cast() {
    long to = intAttr("to", -1);
    DataType dt = TensorArrays.dataType((int) to);
    if (dt == null) {
      throw fail("casting to " + TensorProto.DataType.forNumber((int) to) + " is not supported");
    }
    return same(sd.castTo(in(0).var(), dt));
  }

  private Value slice() {
    Value x = in(0);
    int rank = x.rank();
    if (rank < 0) {
      throw fail("its input's rank is unknown");
    }
    long[] starts;
    long[] axes;
    long[] steps;
    long[] ends = null;
    SDVariable endsVar = null;
    if (opset < 10) {
      starts = intsAttr("starts");
      ends = intsAttr("ends");
      axes = intsAttr("axes");
      steps = null;
    } else {
      starts = longs(constant(1));
      if (in(2).constant() != null) {
        ends = longs(in(2).constant());
      } else {
        endsVar = in(2).var().castTo(DataType.LONG);
      }
      axes = has(3) ? longs(constant(3)) : null;
      steps = has(4) ? longs(constant(4)) : null;
    }
    if (axes == null) {
      axes = new long[starts.length];
      for (int i = 0; i < axes.length; i++) {
        axes[i] = i;
      }
    }
    long[] begin = new long[rank];
    long[] end = new long[rank];
    long[] stride = new long[rank];
    Arrays.fill(stride, 1);
    int beginMask = 0;
    int endMask = 0;
    boolean[] sliced = new boolean[rank];
    int[] slot = new int[rank];
    for (int j = 0; j < axes.length; j++) {
      int a = axis(axes[j], rank);
      sliced[a] = true;
      slot[a] = j;
      begin[a] = starts[j];
      stride[a] = steps == null ? 1 : steps[j];
      if (ends != null) {
        long e = ends[j];
        // ONNX clamps huge ends (INT64_MAX "to the end", INT64_MIN "to the start" when stepping back).
        if ((stride[a] > 0 && e >= Integer.MAX_VALUE) || (stride[a] < 0 && e <= Integer.MIN_VALUE)) {
          endMask |= 1 << a;
        } else {
          end[a] = e;
        }
      }
    }
    for (int a = 0; a < rank; a++) {
      if (!sliced[a]) {
        beginMask |= 1 << a;
        endMask |= 1 << a;
      }
    }
    SDVariable y;
    if (endsVar == null) {
      y = sd.stridedSlice(x.var(), begin, end, stride, beginMask, endMask, 0, 0, 0);
    } else {
      SDVariable[] parts = new SDVariable[rank];
      for (int a = 0; a < rank; a++) {
        parts[a] = sliced[a]
            ? sd.stridedSlice(endsVar, new long[] {slot[a]}, new long[] {slot[a] + 1}, 1)
            : longs(0);
      }
      y = sd.stridedSlice(x.var(), longs(begin), sd.concat(0, parts), longs(stride), beginMask, endMask, 0, 0, 0);
    }
    long[] shape = x.shape().clone();
    for (int a = 0; a < rank; a++) {
      if (sliced[a]) {
        shape[a] = slicedLength(x.shape()[a], begin[a], (endMask & (1 << a)) != 0 ? null : (ends == null ? null : end[a]),
            stride[a], (endMask & (1 << a)) != 0);
      }
    }
    return new Value(y, shape, null);
  }

  private Value reduce(boolean sum) {
    Value x = in(0);
    long[] axes = has(1) ? longs(constant(1)) : intsAttr("axes");
    boolean keep = intAttr("keepdims", 1) != 0;
    if (axes == null || axes.length == 0) {
      if (intAttr("noop_with_empty_axes", 0) != 0) {
        return same(sd.identity(x.var()));
      }
      if (x.rank() < 0) {
        throw fail("its input's rank is unknown");
      }
      axes = Arrays.stream(range(0, x.rank())).asLongStream().toArray();
    }
    if (x.rank() < 0) {
      throw fail("its input's rank is unknown");
    }
    int[] dims = Arrays.stream(axes).mapToInt(a -> axis(a, x.rank())).sorted().toArray();
    SDVariable y = sum ? sd.sum(x.var(), keep, dims) : sd.mean(x.var(), keep, dims);
    long[] shape = x.shape().clone();
    for (int i = dims.length - 1; i >= 0; i--) {
      if (keep) {
        shape[dims[i]] = 1;
      } else {
        shape = remove(shape, dims[i]);
      }
    }
    return new Value(y, shape, null);
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  /** The input at {@code i} of the current node. */
  private Value in(int i) {
    if (i >= node.getInputCount() || node.getInput(i).isEmpty()) {
      throw fail("its input " + i + " is missing");
    }
    Value v = values.get(node.getInput(i));
    if (v == null) {
      throw fail("its input '" + node.getInput(i) + "' is not computed before it");
    }
    return v;
  }

  private boolean has(int i) {
    return i < node.getInputCount() && !node.getInput(i).isEmpty();
  }

  private INDArray constant(int i) {
    INDArray c = in(i).constant();
    if (c == null) {
      throw fail("its input '" + node.getInput(i) + "' must be a constant (an initializer that is not"
          + " trained, or a Constant node)");
    }
    return c;
  }

  private static long[] longs(INDArray a) {
    return a.castTo(DataType.LONG).reshape(a.length()).toLongVector();
  }

  private SDVariable longs(long... v) {
    return sd.constant(Nd4j.createFromArray(v));
  }

  /** Dims {@code [from, to)} of x's run-time shape, as an int64 vector. */
  private SDVariable shapeSlice(Value x, int from, int to) {
    return sd.stridedSlice(sd.shape(x.var()), new long[] {from}, new long[] {to}, 1);
  }

  /** x as 2-D: the dims before {@code axis} become the rows, the rest the columns (ONNX Flatten). */
  private SDVariable flatten(Value x, int axis) {
    int rank = x.rank();
    long rows = product(x.shape(), 0, axis);
    long cols = product(x.shape(), axis, rank);
    if (rows >= 0 || cols >= 0) {
      return sd.reshape(x.var(), rows >= 0 ? rows : -1, cols >= 0 ? cols : -1);
    }
    SDVariable shape = sd.shape(x.var());
    SDVariable r = axis == 0 ? longs(1) : sd.prod(sd.stridedSlice(shape, new long[] {0}, new long[] {axis}, 1), true, 0);
    SDVariable c = sd.prod(sd.stridedSlice(shape, new long[] {axis}, new long[] {rank}, 1), true, 0);
    return sd.reshape(x.var(), sd.concat(0, r, c));
  }

  /** [top, left, bottom, right] pads from the pads or auto_pad attribute. */
  private long[] pads(Value x, long[] kernel, long[] strides, long[] dilations) {
    String autoPad = stringAttr("auto_pad", "NOTSET");
    switch (autoPad) {
      case "NOTSET" -> {
        long[] pads = intsAttr("pads", 0, 0, 0, 0);
        if (pads.length != 4) {
          throw fail("pads must have four entries");
        }
        return pads;
      }
      case "VALID" -> {
        return new long[4];
      }
      case "SAME_UPPER", "SAME_LOWER" -> {
        long[] pads = new long[4];
        for (int d = 0; d < 2; d++) {
          long in = x.shape()[2 + d];
          long effective = (kernel[d] - 1) * dilations[d] + 1;
          long total;
          if (strides[d] == 1) {
            total = effective - 1;
          } else if (in >= 0) {
            long out = (in + strides[d] - 1) / strides[d];
            total = Math.max(0, (out - 1) * strides[d] + effective - in);
          } else {
            throw fail("auto_pad " + autoPad + " with stride > 1 needs the spatial dims, which are known only at run time");
          }
          long small = total / 2;
          boolean upper = autoPad.equals("SAME_UPPER");
          pads[d] = upper ? small : total - small;
          pads[d + 2] = upper ? total - small : small;
        }
        return pads;
      }
      default -> throw fail("auto_pad = '" + autoPad + "' is not supported");
    }
  }

  /** {pH, pW} when the pads are the same on both ends of each axis, else null. */
  private static long[] symmetricPads(long[] pads) {
    return pads[0] == pads[2] && pads[1] == pads[3] ? new long[] {pads[0], pads[1]} : null;
  }

  private SDVariable zeroPad(SDVariable x, long[] pads, double value) {
    INDArray paddings = Nd4j.createFromArray(new long[][] {{0, 0}, {0, 0}, {pads[0], pads[2]}, {pads[1], pads[3]}});
    return sd.nn().pad(x, sd.constant(paddings), PadMode.CONSTANT, value);
  }

  private static long convOut(long in, long padTotal, long kernel, long stride, long dilation) {
    if (in < 0) {
      return -1;
    }
    return (in + padTotal - ((kernel - 1) * dilation + 1)) / stride + 1;
  }

  private static long slicedLength(long dim, long begin, Long end, long step, boolean toEnd) {
    if (dim < 0 || (end == null && !toEnd)) {
      return -1;
    }
    long b = begin < 0 ? begin + dim : begin;
    long e;
    if (toEnd) {
      e = step > 0 ? dim : -1;
    } else {
      e = end < 0 ? end + dim : end;
    }
    if (step > 0) {
      b = Math.clamp(b, 0, dim);
      e = Math.clamp(e, 0, dim);
      return Math.max(0, (e - b + step - 1) / step);
    }
    b = Math.clamp(b, -1, dim - 1);
    e = Math.clamp(e, -1, dim - 1);
    return Math.max(0, (b - e - step - 1) / -step);
  }

  private void requireRank(Value v, int rank, String what) {
    if (v.rank() != rank) {
      throw fail("its input " + what + " must have rank " + rank + (v.rank() < 0 ? ", its rank is unknown" : ", has rank " + v.rank()));
    }
  }

  private static long dim(Value v, int i) {
    return v.shape() == null ? -1 : v.shape()[i];
  }

  private static long normalized(long axis, int rank) {
    return axis < 0 ? axis + rank : axis;
  }

  private int axis(long axis, int rank) {
    long a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      throw fail("axis " + axis + " is out of range for rank " + rank);
    }
    return (int) a;
  }

  private static int[] range(int from, int to) {
    int[] r = new int[to - from];
    for (int i = 0; i < r.length; i++) {
      r[i] = from + i;
    }
    return r;
  }

  private static boolean known(long[] shape, int from, int to) {
    if (shape == null) {
      return false;
    }
    for (int i = from; i < to; i++) {
      if (shape[i] < 0) {
        return false;
      }
    }
    return true;
  }

  /** Product of dims {@code [from, to)}, or -1 when one of them is unknown. */
  private static long product(long[] shape, int from, int to) {
    if (!known(shape, from, to)) {
      return -1;
    }
    long p = 1;
    for (int i = from; i < to; i++) {
      p *= shape[i];
    }
    return p;
  }

  private static long[] remove(long[] shape, int index) {
    long[] out = new long[shape.length - 1];
    System.arraycopy(shape, 0, out, 0, index);
    System.arraycopy(shape, index + 1, out, index, shape.length - index - 1);
    return out;
  }

  /** Numpy broadcasting of two static shapes; null when a rank is unknown. */
  static long[] broadcast(long[] a, long[] b) {
    if (a == null || b == null) {
      return null;
    }
    int rank = Math.max(a.length, b.length);
    long[] out = new long[rank];
    for (int i = 0; i < rank; i++) {
      long da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
      long db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
      if (da == 1) {
        out[i] = db;
      } else if (db == 1) {
        out[i] = da;
      } else {
        out[i] = da >= 0 ? da : db;
      }
    }
    return out;
  }

  private static float[] toFloatArray(List<Float> list) {
    float[] out = new float[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = list.get(i);
    }
    return out;
  }

  private AttributeProto attr(String name) {
    for (AttributeProto a : node.getAttributeList()) {
      if (a.getName().equals(name)) {
        return a;
      }
    }
    return null;
  }

  private long intAttr(String name, long otherwise) {
    AttributeProto a = attr(name);
    return a == null ? otherwise : a.getI();
  }

  private float floatAttr(String name, float otherwise) {
    AttributeProto a = attr(name);
    return a == null ? otherwise : a.getF();
  }

  private String stringAttr(String name, String otherwise) {
    AttributeProto a = attr(name);
    return a == null ? otherwise : a.getS().toStringUtf8();
  }

  private long[] intsAttr(String name, long... otherwise) {
    AttributeProto a = attr(name);
    if (a == null) {
      return otherwise.length == 0 ? null : otherwise;
    }
    return a.getIntsList().stream().mapToLong(Long::longValue).toArray();
  }

  private CompressionException fail(String why) {
    return new CompressionException("cannot translate node " + describe(node) + " (" + node.getOpType() + "): " + why);
  }

  /** A node's name for messages: its name, or its first output when it has none. */
  static String describe(NodeProto n) {
    if (!n.getName().isEmpty()) {
      return n.getName();
    }
    return n.getOutputCount() > 0 ? "producing '" + n.getOutput(0) + "'" : "#" + n.getOpType();
  }
}
