/** Calibration and evaluation datasets ({@code .npz}): upload, validation, listing, deletion. */
package dev.modelpress.dataset;
