import {
  CALIBRATION_COMMON,
  describeFashionMnistTask,
  EVALUATION_COMMON,
} from '../common/fmnist-task-checks.ts';
import { fmnistMobilenet } from './task.ts';

describeFashionMnistTask(fmnistMobilenet, {
  calibration: {
    ...CALIBRATION_COMMON,
    size: 5000,
    labelCounts: [521, 497, 490, 508, 527, 503, 467, 450, 515, 522],
    last10Sha256: 'e7f28669e3f2d7d3fca15a7ad754868d3741b2b165acb1d27dd7fcc2d01f58ac',
  },
  evaluation: {
    ...EVALUATION_COMMON,
    size: 10_000,
    labelCounts: new Array(10).fill(1000),
    last10Sha256: '54f1f4d13f5b1c3b2006c8a0807dc80f977f7be48ad777c51b9e61a44791b87a',
  },
});
