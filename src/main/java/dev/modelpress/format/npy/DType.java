package dev.modelpress.format.npy;

/** Element types of NumPy arrays that modelpress accepts, with their {@code .npy} descriptors. */
public enum DType {
  FLOAT32("<f4", 4),
  FLOAT64("<f8", 8),
  FLOAT16("<f2", 2),
  INT64("<i8", 8),
  INT32("<i4", 4),
  INT16("<i2", 2),
  INT8("|i1", 1),
  UINT8("|u1", 1),
  BOOL("|b1", 1);

  private final String descriptor;
  private final int size;

  DType(String descriptor, int size) {
    this.descriptor = descriptor;
    this.size = size;
  }

  /** The little-endian {@code .npy} descriptor, e.g. {@code <f4}. */
  public String descriptor() {
    return descriptor;
  }

  /** Bytes per element. */
  public int size() {
    return size;
  }
}
