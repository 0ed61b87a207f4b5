package dev.modelpress.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.safetensors.SafetensorsFile.Entry;
import dev.modelpress.format.safetensors.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

  @TempDir Path dir;

  private final List<Tensor> tensors =
      List.of(
          new Tensor("layer.weight", SafetensorsDtype.F32, List.of(2L, 3L)),
          new Tensor("empty", SafetensorsDtype.F16, List.of(0L)),
          new Tensor("layer.bias", SafetensorsDtype.I64, List.of(3L)),
          new Tensor("flag", SafetensorsDtype.BOOL, List.of()));

  @Test
  void writtenFileReadsBackWithAlignedDataAndValues() throws Exception {
    Path out = dir.resolve("model.safetensors");
    try (SafetensorsWriter w = SafetensorsWriter.create(out, tensors, Map.of("format", "pt"))) {
      // The weight arrives in two pieces, the bias through a stream.
      w.write("layer.weight", floats(1f, 2f, 3f));
      w.write("layer.weight", floats(4f, 5f, -6.5f));
      try (OutputStream s = w.tensorStream("layer.bias")) {
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(7).putLong(-1).putLong(1L << 40);
        s.write(b.array());
      }
      w.write("flag", ByteBuffer.wrap(new byte[] {1}));
    }

    long headerLength =
        ByteBuffer.wrap(Files.readAllBytes(out), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertThat((8 + headerLength) % 8).as("data region starts 8-aligned").isZero();
    assertThat(Files.size(out)).isEqualTo(8 + headerLength + 24 + 0 + 24 + 1);

    try (SafetensorsFile f = SafetensorsFile.open(out)) {
      assertThat(f.entries())
          .extracting(Entry::name)
          .containsExactly("layer.weight", "empty", "layer.bias", "flag");
      assertThat(f.entry("layer.weight").offset()).isEqualTo(8 + headerLength);
      float[] w = new float[6];
      f.tensorData("layer.weight").asFloatBuffer().get(w);
      assertThat(w).containsExactly(1f, 2f, 3f, 4f, 5f, -6.5f);
      ByteBuffer bias = f.tensorData("layer.bias");
      assertThat(bias.getLong(0)).isEqualTo(7);
      assertThat(bias.getLong(8)).isEqualTo(-1);
      assertThat(bias.getLong(16)).isEqualTo(1L << 40);
      assertThat(f.entry("empty").shape()).containsExactly(0L);
      assertThat(f.entry("flag").shape()).isEmpty();
      assertThat(f.tensorData("flag").get(0)).isEqualTo((byte) 1);
      assertThat(f.metadata()).isEqualTo(Map.of("format", "pt"));
    }
    assertThat(partialFiles()).isEmpty();
  }

  @Test
  void refusesToStartATensorBeforeThePreviousIsComplete() throws Exception {
    Path out = dir.resolve("m.safetensors");
    try (SafetensorsWriter w = SafetensorsWriter.create(out, tensors, Map.of())) {
      w.write("layer.weight", floats(1f, 2f));
      assertThatThrownBy(() -> w.write("layer.bias", ByteBuffer.allocate(24)))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("'layer.weight' got 8 of its 24 bytes")
          .hasMessageContaining("'layer.bias' cannot start yet");
    } catch (IllegalStateException incompleteOnClose) {
      assertThat(incompleteOnClose).hasMessageContaining("'layer.weight' got 8 of its 24 bytes");
    }
    assertThat(out).doesNotExist();
    assertThat(partialFiles()).isEmpty();
  }

  @Test
  void refusesMoreBytesThanATensorNeeds() throws Exception {
    Path out = dir.resolve("m.safetensors");
    SafetensorsWriter w = SafetensorsWriter.create(out, tensors, Map.of());
    assertThatThrownBy(() -> w.write("layer.weight", ByteBuffer.allocate(28)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("'layer.weight' needs 24 bytes; writing 28 more after 0");
    assertThatThrownBy(w::close).isInstanceOf(IllegalStateException.class);
    assertThat(out).doesNotExist();
  }

  @Test
  void refusesAStreamClosedShortOfTheTensorSize() throws Exception {
    Path out = dir.resolve("m.safetensors");
    SafetensorsWriter w = SafetensorsWriter.create(out, tensors, Map.of());
    OutputStream s = w.tensorStream("layer.weight");
    s.write(new byte[10]);
    assertThatThrownBy(s::close)
        .isInstanceOf(IOException.class)
        .hasMessageContaining("'layer.weight' stream closed after 10 of its 24 bytes");
    assertThatThrownBy(w::close).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void failureMidwayLeavesAnExistingTargetUntouched() throws Exception {
    Path out = dir.resolve("m.safetensors");
    Files.writeString(out, "previous version");
    assertThatThrownBy(
            () -> {
              try (SafetensorsWriter w = SafetensorsWriter.create(out, tensors, Map.of())) {
                w.write("layer.weight", floats(1f, 2f, 3f, 4f, 5f, 6f));
                throw new IllegalArgumentException("quantizer failed");
              }
            })
        .hasMessage("quantizer failed");
    assertThat(Files.readString(out)).isEqualTo("previous version");
    assertThat(partialFiles()).isEmpty();
  }

  @Test
  void rejectsDuplicateDeclarations() {
    List<Tensor> twice =
        List.of(
            new Tensor("a", SafetensorsDtype.U8, List.of(1L)),
            new Tensor("a", SafetensorsDtype.U8, List.of(1L)));
    assertThatThrownBy(() -> SafetensorsWriter.create(dir.resolve("x"), twice, Map.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'a' is declared twice");
  }

  @Test
  void copyTransformingRewritesEveryTensorAndKeepsMetadata() throws Exception {
    Path in = dir.resolve("in.safetensors");
    try (SafetensorsWriter w = SafetensorsWriter.create(in, tensors, Map.of("k", "v"))) {
      w.write("layer.weight", floats(1f, -2f, 3f, -4f, 5f, -6f));
      w.write("layer.bias", ByteBuffer.allocate(24));
      w.write("flag", ByteBuffer.wrap(new byte[] {0}));
    }
    Path out = dir.resolve("out.safetensors");
    try (SafetensorsFile f = SafetensorsFile.open(in)) {
      SafetensorsWriter.copyTransforming(
          f,
          out,
          (entry, data) -> {
            if (entry.dtype() != SafetensorsDtype.F32) {
              return data;
            }
            // Zero the negative weights, as a pruner would.
            ByteBuffer result =
                ByteBuffer.allocate(data.remaining()).order(ByteOrder.LITTLE_ENDIAN);
            while (data.hasRemaining()) {
              result.putFloat(Math.max(0f, data.getFloat()));
            }
            return result.flip();
          });
    }
    try (SafetensorsFile f = SafetensorsFile.open(out)) {
      float[] w = new float[6];
      f.tensorData("layer.weight").asFloatBuffer().get(w);
      assertThat(w).containsExactly(1f, 0f, 3f, 0f, 5f, 0f);
      assertThat(f.entries()).hasSize(4);
      assertThat(f.metadata()).isEqualTo(Map.of("k", "v"));
    }
  }

  @Test
  void copyTransformingRejectsATransformThatChangesTheSize() throws Exception {
    Path in = dir.resolve("in.safetensors");
    try (SafetensorsWriter w = SafetensorsWriter.create(in, tensors, Map.of())) {
      w.write("layer.weight", ByteBuffer.allocate(24));
      w.write("layer.bias", ByteBuffer.allocate(24));
      w.write("flag", ByteBuffer.allocate(1));
    }
    Path out = dir.resolve("out.safetensors");
    try (SafetensorsFile f = SafetensorsFile.open(in)) {
      assertThatThrownBy(
              () -> SafetensorsWriter.copyTransforming(f, out, (e, d) -> ByteBuffer.allocate(3)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("returned 3 bytes for tensor 'layer.weight', which needs 24");
    }
    assertThat(out).doesNotExist();
    assertThat(partialFiles()).isEmpty();
  }

  private static ByteBuffer floats(float... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return b.flip();
  }

  private List<Path> partialFiles() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> p.getFileName().toString().endsWith(".partial")).toList();
    }
  }
}
