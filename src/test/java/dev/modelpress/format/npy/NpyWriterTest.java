package dev.modelpress.format.npy;

import static dev.modelpress.format.npy.NpyTestFiles.fixture;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class NpyWriterTest {

  @ParameterizedTest
  @ValueSource(
      strings = {
        "float32_3x4.npy",
        "int64_5.npy",
        "bool_2x3.npy",
        "uint8_4.npy",
        "float64_scalar.npy",
        "float16_3.npy"
      })
  void writesTheSameBytesAsNumpySave(String file) throws Exception {
    byte[] numpy = Files.readAllBytes(fixture(file));
    NdArray a = NpyReader.read("x", new ByteArrayInputStream(numpy), 1 << 20);
    assertThat(write(a)).isEqualTo(numpy);
  }

  @Test
  void headerIsVersion1PaddedTo64BytesEndingInNewline() throws Exception {
    ByteBuffer data = ByteBuffer.allocate(4 * 7).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 7; i++) {
      data.putInt(i * 100 - 300);
    }
    NdArray a = new NdArray("v", DType.INT32, new long[] {7}, data.flip());
    byte[] out = write(a);
    assertThat(out[6]).isEqualTo((byte) 1);
    int headerLength = (out[8] & 0xff) | (out[9] & 0xff) << 8;
    assertThat((10 + headerLength) % 64).isZero();
    assertThat(out[10 + headerLength - 1]).isEqualTo((byte) '\n');
    assertThat(out).hasSize(10 + headerLength + 28);

    NdArray back = NpyReader.read("v", new ByteArrayInputStream(out), 1 << 20);
    assertThat(back.dtype()).isEqualTo(DType.INT32);
    assertThat(back.shape()).containsExactly(7);
    assertThat(back.data().getInt(24)).isEqualTo(300);
  }

  @Test
  void writesDirectBuffers() throws Exception {
    ByteBuffer data = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(-0.125);
    NdArray a = new NdArray("d", DType.FLOAT64, new long[] {}, data.flip());
    NdArray back = NpyReader.read("d", new ByteArrayInputStream(write(a)), 1 << 20);
    assertThat(back.data().getDouble(0)).isEqualTo(-0.125);
  }

  @Test
  void refusesDataThatDoesNotMatchTheShape() {
    NdArray a = new NdArray("w", DType.FLOAT32, new long[] {2, 3}, ByteBuffer.allocate(20));
    assertThatThrownBy(() -> write(a))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(
            "array 'w': shape (2, 3) of <f4 needs 24 bytes but its data holds 20");
  }

  private static byte[] write(NdArray a) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    NpyWriter.write(a, out);
    return out.toByteArray();
  }
}
