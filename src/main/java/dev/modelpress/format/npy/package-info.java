/**
 * NumPy {@code .npy} arrays and {@code .npz} archives: the format of calibration and evaluation
 * data sets. The readers treat every upload as hostile (no pickles, sizes checked against a budget
 * before allocating, zip entry names and inflated sizes never trusted); the writers produce files
 * that {@code np.load} reads.
 */
package dev.modelpress.format.npy;
