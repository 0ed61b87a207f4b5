package dev.modelpress.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.safetensors.SafetensorsFile.Entry;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ReadOnlyBufferException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {

  @TempDir Path dir;

  @Test
  void readsFileWrittenByIndependentPythonWriter() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"))) {
      // Header keys are bias, weight, step; the data order is weight, step, bias.
      assertThat(f.entries()).extracting(Entry::name).containsExactly("weight", "step", "bias");
      Entry weight = f.entry("weight");
      assertThat(weight.dtype()).isEqualTo(SafetensorsDtype.F32);
      assertThat(weight.shape()).containsExactly(2L, 3L);
      assertThat(weight.byteLength()).isEqualTo(24);
      long headerLength =
          ByteBuffer.wrap(Files.readAllBytes(fixture("python_written.safetensors")), 0, 8)
              .order(ByteOrder.LITTLE_ENDIAN)
              .getLong();
      assertThat(weight.offset()).isEqualTo(8 + headerLength);

      ByteBuffer w = f.tensorData("weight");
      assertThat(w.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
      float[] values = new float[6];
      w.asFloatBuffer().get(values);
      assertThat(values).containsExactly(1f, 2f, 3f, 4f, 5f, 6.5f);

      assertThat(f.entry("step").shape()).isEmpty();
      assertThat(f.tensorData("step").getLong(0)).isEqualTo(42L);

      ByteBuffer bias = f.tensorData("bias");
      assertThat(Float.float16ToFloat(bias.getShort(0))).isEqualTo(1.0f);
      assertThat(Float.float16ToFloat(bias.getShort(2))).isEqualTo(-2.0f);
      assertThat(Float.float16ToFloat(bias.getShort(4))).isEqualTo(0.5f);

      assertThat(f.metadata()).containsEntry("format", "pt").containsEntry("source", "generate.py");
    }
  }

  @Test
  void readsFileWrittenByTheReferenceImplementation() throws Exception {
    // Written by the safetensors package 0.8.0 (save_file), which orders tensors by alignment.
    try (SafetensorsFile f = SafetensorsFile.open(fixture("reference_written.safetensors"))) {
      assertThat(f.entries())
          .extracting(Entry::name)
          .containsExactly("ids", "embed.weight", "half", "mask");
      assertThat(f.entries().getFirst().offset() % 8).as("aligned data start").isZero();
      ByteBuffer ids = f.tensorData("ids");
      assertThat(ids.getLong(0)).isEqualTo(1);
      assertThat(ids.getLong(8)).isEqualTo(-1);
      assertThat(ids.getLong(16)).isEqualTo(1L << 33);
      float[] embed = new float[8];
      f.tensorData("embed.weight").asFloatBuffer().get(embed);
      assertThat(embed).containsExactly(-4f, -3f, -2f, -1f, 0f, 1f, 2f, 3f);
      assertThat(f.entry("embed.weight").shape()).containsExactly(2L, 4L);
      assertThat(Float.float16ToFloat(f.tensorData("half").getShort(2))).isEqualTo(-8f);
      assertThat(f.entry("mask").dtype()).isEqualTo(SafetensorsDtype.BOOL);
      ByteBuffer mask = f.tensorData("mask");
      assertThat(new byte[] {mask.get(0), mask.get(1), mask.get(2)}).containsExactly(1, 0, 1);
      assertThat(f.metadata()).isEqualTo(Map.of("format", "np"));
    }
  }

  @Test
  void summaryListsTensorsAndCountsParameters() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"))) {
      ModelSummary s = f.summary();
      assertThat(s.format()).isEqualTo("safetensors");
      assertThat(s.parameterCount()).isEqualTo(6 + 1 + 3);
      assertThat(s.tensors()).hasSize(3);
      assertThat(s.tensors().getFirst().name()).isEqualTo("weight");
      assertThat(s.tensors().getFirst().dtype()).isEqualTo("F32");
      assertThat(s.tensors().getFirst().shape()).containsExactly(2L, 3L);
      assertThat(s.tensors().getFirst().consumers()).isEmpty();
      assertThat(s.inputs()).isEmpty();
      assertThat(s.outputs()).isEmpty();
      assertThat(s.opsets()).isEmpty();
      assertThat(s.metadata()).containsEntry("format", "pt");
    }
  }

  @Test
  void tensorDataIsReadOnly() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"))) {
      ByteBuffer w = f.tensorData("weight");
      assertThat(w.isReadOnly()).isTrue();
      assertThatThrownBy(() -> w.putFloat(0, 9f)).isInstanceOf(ReadOnlyBufferException.class);
    }
  }

  @Test
  void viewsFailCleanlyAfterClose() throws Exception {
    SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"));
    ByteBuffer w = f.tensorData("weight");
    f.close();
    f.close(); // idempotent
    assertThatThrownBy(() -> w.getFloat(0)).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void readChunksHandsOutTheTensorInOrder() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"))) {
      List<Integer> sizes = new ArrayList<>();
      List<Float> values = new ArrayList<>();
      f.readChunks(
          "weight",
          8,
          chunk -> {
            sizes.add(chunk.remaining());
            while (chunk.hasRemaining()) {
              values.add(chunk.getFloat());
            }
          });
      assertThat(sizes).containsExactly(8, 8, 8);
      assertThat(values).containsExactly(1f, 2f, 3f, 4f, 5f, 6.5f);
    }
  }

  @Test
  void tensorSegmentReadsTheSameBytesAsTensorData() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"))) {
      MemorySegment w = f.tensorSegment("weight");
      assertThat(w.byteSize()).isEqualTo(24);
      assertThat(w.isReadOnly()).isTrue();
      assertThat(w.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 5)).isEqualTo(6.5f);
    }
  }

  @Test
  void acceptsHeaderWithoutTensors() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(file("{}      ", 0))) {
      assertThat(f.entries()).isEmpty();
      assertThat(f.summary().parameterCount()).isZero();
    }
  }

  @Test
  void rejectsHeaderThatIsNotUtf8() throws Exception {
    byte[] header = {'{', '"', (byte) 0xff, (byte) 0xfe, '"', ':', '1', '}'};
    assertRejected(rawFile(header.length, header), "not valid JSON");
  }

  @Test
  void rejectsBlankHeader() throws Exception {
    assertRejected(file("        ", 0), "not a JSON object");
  }

  @Test
  void unknownTensorNameIsNoSuchElement() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(fixture("python_written.safetensors"))) {
      assertThatThrownBy(() -> f.tensorData("nope"))
          .isInstanceOf(NoSuchElementException.class)
          .hasMessageContaining("'nope'");
    }
  }

  @Test
  void acceptsEmptyTensorsSharingAnOffset() throws Exception {
    Path p =
        file(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                + "\"b\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[0,0]},"
                + "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
            2);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertThat(f.entries()).hasSize(3);
      assertThat(f.tensorData("a").remaining()).isZero();
      assertThat(f.summary().parameterCount()).isEqualTo(2);
    }
  }

  @Test
  void rejectsFileShorterThanLengthField() throws Exception {
    Path p = dir.resolve("short.safetensors");
    Files.write(p, new byte[] {1, 2, 3, 4, 5});
    assertRejected(p, "5 bytes", "too short");
  }

  @Test
  void rejectsHeaderLengthOfTwoToThe62() throws Exception {
    Path p = rawFile(1L << 62, "{}".getBytes(StandardCharsets.UTF_8));
    assertRejected(p, "4611686018427387904", "exceeds the limit");
  }

  @Test
  void rejectsHeaderLengthWithTopBitSetAsUnsigned() throws Exception {
    Path p = rawFile(-1L, "{}".getBytes(StandardCharsets.UTF_8));
    assertRejected(p, "18446744073709551615", "exceeds the limit");
  }

  @Test
  void rejectsHeaderLongerThanFile() throws Exception {
    Path p = rawFile(1000, "{}".getBytes(StandardCharsets.UTF_8));
    assertRejected(p, "header length 1000", "larger than the 2 bytes");
  }

  @Test
  void rejectsHeaderThatIsNotJson() throws Exception {
    assertRejected(file("{\"a\": [1, 2", 0), "not valid JSON");
  }

  @Test
  void jsonErrorsDoNotLeakParserInternals() throws Exception {
    // Jackson's wording may change between versions; its source and constraint references must
    // not reach a client whatever it says.
    assertThatThrownBy(() -> SafetensorsFile.open(file("{\"a\": [1, 2", 0)))
        .isInstanceOf(FormatException.class)
        .hasMessageStartingWith("safetensors header is not valid JSON at header byte 11: ")
        .message()
        .doesNotContain("Source", "REDACTED", "`");
    assertThatThrownBy(() -> SafetensorsFile.open(file("[".repeat(600), 0)))
        .isInstanceOf(FormatException.class)
        .message()
        .contains("nesting depth")
        .doesNotContain("StreamReadConstraints", "`");
  }

  @Test
  void rejectsHeaderThatIsNotAnObject() throws Exception {
    assertRejected(file("[1, 2]", 0), "not a JSON object");
  }

  @Test
  void rejectsUnknownDtype() throws Exception {
    Path p = file("{\"w\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    assertRejected(p, "tensor 'w'", "unsupported dtype 'F33'");
  }

  @Test
  void rejectsNegativeDimension() throws Exception {
    Path p = file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2, 3],\"data_offsets\":[0,8]}}", 8);
    assertRejected(p, "tensor 'w'", "shape[0] = -2", "not a non-negative integer");
  }

  @Test
  void rejectsEndBeforeBegin() throws Exception {
    Path p = file("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,4]}}", 8);
    assertRejected(p, "tensor 'w'", "end 4 is before begin 8");
  }

  @Test
  void rejectsByteRangeThatDoesNotMatchShape() throws Exception {
    Path p = file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24);
    assertRejected(p, "tensor 'w'", "needs 24 bytes", "span 20");
  }

  @Test
  void rejectsOffsetsPastEndOfFile() throws Exception {
    // A truncated file: the header promises 24 bytes, 10 are present.
    Path p = file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 10);
    assertRejected(p, "tensor 'w'", "end 24 is past the end of the data region", "10 bytes");
  }

  @Test
  void rejectsOverlappingTensors() throws Exception {
    Path p =
        file(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            24);
    assertRejected(p, "'a' [0, 16)", "'b' [8, 24)", "overlap");
  }

  @Test
  void rejectsDuplicateTensorNames() throws Exception {
    Path p =
        file(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
            8);
    assertRejected(p, "Duplicate", "\"a\"");
  }

  @Test
  void rejectsShapeWhoseByteSizeOverflows() throws Exception {
    Path p =
        file(
            "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
            8);
    assertRejected(p, "tensor 'w'", "too large");
  }

  @Test
  void rejectsOffsetsThatAreNotIntegers() throws Exception {
    Path p = file("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4.5]}}", 8);
    assertRejected(p, "tensor 'w'", "data_offsets[1]");
  }

  @Test
  void rejectsNonStringMetadataValue() throws Exception {
    Path p = file("{\"__metadata__\":{\"epochs\":3}}", 0);
    assertRejected(p, "__metadata__", "'epochs'", "not a string");
  }

  private void assertRejected(Path p, String... fragments) {
    assertThatThrownBy(() -> SafetensorsFile.open(p).close())
        .isInstanceOf(FormatException.class)
        .message()
        .contains(fragments);
  }

  /** A file with this JSON header, its true length, and {@code dataBytes} bytes of data. */
  private Path file(String json, int dataBytes) throws IOException {
    byte[] header = json.getBytes(StandardCharsets.UTF_8);
    byte[] data = new byte[dataBytes];
    for (int i = 0; i < dataBytes; i++) {
      data[i] = (byte) i;
    }
    ByteBuffer b =
        ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(header.length).put(header).put(data);
    Path p = Files.createTempFile(dir, "t", ".safetensors");
    Files.write(p, b.array());
    return p;
  }

  /** A file whose length field says {@code declaredLength}, followed by {@code rest}. */
  private Path rawFile(long declaredLength, byte[] rest) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(declaredLength).put(rest);
    Path p = Files.createTempFile(dir, "raw", ".safetensors");
    Files.write(p, b.array());
    return p;
  }

  static Path fixture(String name) throws URISyntaxException {
    return Path.of(SafetensorsFileTest.class.getResource("/fixtures/" + name).toURI());
  }
}
