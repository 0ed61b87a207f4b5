package dev.modelpress.format.npy;

import static dev.modelpress.format.npy.NpyTestFiles.fixture;
import static dev.modelpress.format.npy.NpyTestFiles.npy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class NpyReaderTest {

  private static final long MB = 1 << 20;

  @Test
  void readsFloat32MatrixWrittenByNumpy() throws Exception {
    NdArray a = readFixture("float32_3x4.npy");
    assertThat(a.name()).isEqualTo("x");
    assertThat(a.dtype()).isEqualTo(DType.FLOAT32);
    assertThat(a.shape()).containsExactly(3, 4);
    float[] values = new float[12];
    a.data().asFloatBuffer().get(values);
    // np.arange(12) * 0.5 - 1
    assertThat(values)
        .containsExactly(-1f, -0.5f, 0f, 0.5f, 1f, 1.5f, 2f, 2.5f, 3f, 3.5f, 4f, 4.5f);
  }

  @Test
  void readsInt64VectorWrittenByNumpy() throws Exception {
    NdArray a = readFixture("int64_5.npy");
    assertThat(a.dtype()).isEqualTo(DType.INT64);
    assertThat(a.shape()).containsExactly(5);
    long[] values = new long[5];
    a.data().asLongBuffer().get(values);
    assertThat(values).containsExactly(-3, 0, 7, 1L << 40, -(1L << 62));
  }

  @Test
  void readsBoolAndUint8WrittenByNumpy() throws Exception {
    NdArray b = readFixture("bool_2x3.npy");
    assertThat(b.dtype()).isEqualTo(DType.BOOL);
    assertThat(b.shape()).containsExactly(2, 3);
    assertThat(bytes(b.data())).containsExactly(1, 0, 1, 0, 0, 1);

    NdArray u = readFixture("uint8_4.npy");
    assertThat(u.dtype()).isEqualTo(DType.UINT8);
    assertThat(bytes(u.data())).containsExactly(0, 1, (byte) 128, (byte) 255);
  }

  @Test
  void readsScalarAndFloat16WrittenByNumpy() throws Exception {
    NdArray s = readFixture("float64_scalar.npy");
    assertThat(s.shape()).isEmpty();
    assertThat(s.elementCount()).isEqualTo(1);
    assertThat(s.data().getDouble(0)).isEqualTo(3.25);

    NdArray h = readFixture("float16_3.npy");
    assertThat(h.dtype()).isEqualTo(DType.FLOAT16);
    ByteBuffer d = h.data();
    assertThat(Float.float16ToFloat(d.getShort(0))).isEqualTo(1f);
    assertThat(Float.float16ToFloat(d.getShort(2))).isEqualTo(-2f);
    assertThat(Float.float16ToFloat(d.getShort(4))).isEqualTo(0.5f);
  }

  @ParameterizedTest
  @ValueSource(strings = {"float32_v2.npy", "float32_v3.npy"})
  void readsFormatVersions2And3WrittenByNumpy(String file) throws Exception {
    NdArray a = readFixture(file);
    assertThat(a.shape()).containsExactly(3);
    float[] values = new float[3];
    a.data().asFloatBuffer().get(values);
    assertThat(values).containsExactly(1.5f, -2.5f, 4f);
  }

  @Test
  void leavesTheStreamRightAfterTheData() throws Exception {
    byte[] file = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", 3);
    InputStream in = new ByteArrayInputStream(file);
    NpyReader.read("x", in, MB);
    assertThat(in.read()).isEqualTo(2);
  }

  @Test
  void acceptsSingleByteTypesWithAnyByteOrderMark() throws Exception {
    for (String order : new String[] {"|", "=", "<", ">"}) {
      NdArray a =
          read(npy("{'descr': '" + order + "i1', 'fortran_order': False, 'shape': (2,), }", 2));
      assertThat(a.dtype()).isEqualTo(DType.INT8);
    }
  }

  @Test
  void acceptsFortranOrderWhenTheLayoutIsTheSameAsC() throws Exception {
    NdArray a = read(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3), }", 12));
    assertThat(a.shape()).containsExactly(1, 3);
  }

  @Test
  void acceptsPython2LongLiteralsAndDoubleQuotes() throws Exception {
    NdArray a =
        read(npy("{\"descr\": \"<i2\", \"fortran_order\": False, \"shape\": (2L, 3L)}", 12));
    assertThat(a.dtype()).isEqualTo(DType.INT16);
    assertThat(a.shape()).containsExactly(2, 3);
  }

  @Test
  void rejectsBigEndian() {
    assertRejected(
        npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8),
        "array 'x'",
        "'>f4' is big-endian");
  }

  @Test
  void rejectsObjectArraysNeverUnpickling() {
    assertRejected(
        npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16),
        "array 'x'",
        "pickled Python objects");
  }

  @Test
  void rejectsStructuredDtypes() {
    assertRejected(
        npy("{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (2,), }", 24),
        "array 'x'",
        "structured dtypes");
  }

  @Test
  void rejectsUnsupportedAndAmbiguousDtypes() {
    assertRejected(
        npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8),
        "array 'x'",
        "unsupported dtype '<c8'");
    assertRejected(
        npy("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", 20),
        "unsupported dtype '<U5'");
    assertRejected(
        npy("{'descr': '=f4', 'fortran_order': False, 'shape': (1,), }", 4),
        "'=f4' has native byte order");
  }

  @Test
  void rejectsFortranOrder() {
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24),
        "array 'x'",
        "Fortran order",
        "save it in C order");
  }

  @Test
  void rejectsNegativeDimensions() {
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 12),
        "array 'x'",
        "shape (-1, 3) has a negative dimension");
  }

  @Test
  void rejectsHugeDeclaredShapeOverFewBytesBeforeAllocating() {
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", 10),
        "array 'x'",
        "declares 4398046511104 bytes",
        "more than the 1048576 bytes allowed");
  }

  @Test
  void rejectsShapeWhoseSizeOverflows() {
    assertRejected(
        npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8),
        "array 'x'",
        "too large");
  }

  @Test
  void rejectsTruncatedData() {
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 40),
        "array 'x'",
        "truncated",
        "declares 48 data bytes but only 40 are present");
  }

  @Test
  void truncatedLargeDeclarationAllocatesOnlyWhatArrives() throws Exception {
    // 1 GiB declared and allowed, 10 bytes present: the reader must not allocate the gigabyte.
    byte[] file = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }", 10);
    var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long before = threads.getCurrentThreadAllocatedBytes();
    assertThatThrownBy(() -> NpyReader.read("x", new ByteArrayInputStream(file), 2L << 30))
        .isInstanceOf(FormatException.class)
        .hasMessageContaining("declares 1073741824 data bytes but only 10 are present");
    assertThat(threads.getCurrentThreadAllocatedBytes() - before).isLessThan(8 * MB);
  }

  @Test
  void rejectsMalformedHeaders() {
    assertRejected(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12), "(n,)");
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", 12),
        "unexpected value");
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 'y'}", 12),
        "exactly the keys");
    assertRejected(npy("{'descr': '<f4', 'fortran_order': False}", 12), "exactly the keys");
    assertRejected(
        npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 12),
        "duplicate key 'descr'");
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} __import__('os')", 12),
        "unexpected text after");
    assertRejected(
        npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", 12), "unexpected value");
  }

  @Test
  void rejectsWrongMagicAndVersion() {
    assertRejected("PK\3\4 not numpy".getBytes(), "array 'x'", "not an npy file");
    assertRejected(
        npy(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4),
        "unsupported npy format version 4.0");
    assertRejected(
        new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 100, 0, '{'},
        "ends inside its header (1 of 100 bytes)");
  }

  @Test
  void rejectsOversizedHeader() {
    byte[] file = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 64};
    assertRejected(file, "npy header of 1073741824 bytes exceeds the limit");
  }

  private static NdArray readFixture(String name) throws Exception {
    try (InputStream in = Files.newInputStream(fixture(name))) {
      return NpyReader.read("x", in, MB);
    }
  }

  private static NdArray read(byte[] file) throws Exception {
    return NpyReader.read("x", new ByteArrayInputStream(file), MB);
  }

  private static void assertRejected(byte[] file, String... fragments) {
    assertThatThrownBy(() -> read(file))
        .isInstanceOf(FormatException.class)
        .message()
        .contains(fragments);
  }

  static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.get(out);
    return out;
  }
}
