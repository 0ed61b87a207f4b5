/**
 * Model and data file formats (ONNX, safetensors, NumPy {@code .npy}/{@code .npz}): readers that
 * validate hostile input before allocating, and writers. Plain Java, no Spring.
 */
package dev.modelpress.format;
