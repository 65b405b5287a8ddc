"""Image-quality and resource metrics of the generators (DESIGN.md section 2, "measured honestly").

- `reconstruction`: SSIM, PSNR, MSE of reconstructions of held-out real images (scikit-image).
- `fidelity`: FID and KID between generated and held-out real images (torch-fidelity, local weights only;
  torch-fidelity itself is imported only when a weights file is there, as it costs seconds).
- `memorisation`: how close each synthetic image is to its nearest training image.
- `resources`: peak memory and generation time per image.
"""

from catvae.metrics.fidelity import fid_kid
from catvae.metrics.memorisation import memorisation
from catvae.metrics.reconstruction import reconstruction_metrics
from catvae.metrics.resources import PeakMemory, time_generation

__all__ = ["reconstruction_metrics", "fid_kid", "memorisation", "PeakMemory", "time_generation"]
