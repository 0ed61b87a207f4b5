package dev.modelpress.format.safetensors;

import java.util.Optional;

/**
 * Element types of safetensors tensors, named as the format names them in the header ({@code F32},
 * {@code BF16}, ...). All are little-endian; {@code BOOL} is one byte per element.
 */
public enum SafetensorsDtype {
  F64(8),
  F32(4),
  F16(2),
  BF16(2),
  I64(8),
  I32(4),
  I16(2),
  I8(1),
  U64(8),
  U32(4),
  U16(2),
  U8(1),
  BOOL(1),
  F8_E4M3(1),
  F8_E5M2(1);

  private final int size;

  SafetensorsDtype(int size) {
    this.size = size;
  }

  /** Bytes per element. */
  public int size() {
    return size;
  }

  /** The dtype with this header name, if modelpress supports it. */
  public static Optional<SafetensorsDtype> fromHeaderName(String name) {
    for (SafetensorsDtype d : values()) {
      if (d.name().equals(name)) {
        return Optional.of(d);
      }
    }
    return Optional.empty();
  }
}
