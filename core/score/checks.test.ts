import { describe, expect, it } from 'vitest';
import { compareMetric } from '../evaluate/evaluate.ts';
import { TARGETS } from '../formats/targets.ts';
import {
  badgeText,
  type CheckResult,
  type Evidence,
  evidenceFromPipeline,
  levelEarned,
  nativeScheme,
  runCheck,
  runChecks,
  trusted,
  usedScheme,
} from './checks.ts';

const t310 = TARGETS.ascend310;

/** Evidence of a run with FP32 0.9 and the given INT8 metric, passing L1-L3 otherwise. */
function evidence(int8: number, patch: Partial<Evidence> = {}): Evidence {
  return {
    runId: 'run-1',
    task: 'smoke-fmnist',
    target: 'ascend310',
    recipe: 'r',
    evaluation: {
      comparison: compareMetric('top1', { top1: 0.9 }, { top1: int8 }),
      samples: 1000,
      splitSize: 1000,
      executor: 'lowered-emulator',
    },
    calibration: { samples: 50, split: 'calibration', sampler: 'coverage' },
    methods: {
      a: { method: 'percentile', percentile: 99.99, tier: 'high' },
      b: { method: 'kl', tier: 'medium' },
    },
    sensitivity: { measuredByService: true, usedForTiers: true, layers: 2 },
    estimate: { lossPoints: (0.9 - int8) * 100 + 0.1, samples: 500 },
    scheme: { used: nativeScheme(t310), native: nativeScheme(t310) },
    biasCorrection: true,
    fidelity: { bitExact: true, checkSet: 'emulator reference vectors', mismatches: 0 },
    reproducibility: { secondRunId: 'run-2', params: ['abc', 'abc'], metric: ['0.9', '0.9'] },
    ...patch,
  };
}
const byId = (cs: CheckResult[], id: string) => cs.find((c) => c.id === id)!;

describe('checks', () => {
  it('lists the 15 checks of the standard in order with their levels', () => {
    const cs = runChecks(evidence(0.898));
    expect(cs.map((c) => c.id)).toEqual([
      'L1.runs',
      'L1.loss',
      'L1.reproducible',
      'L2.sensitivity',
      'L2.samples',
      'L2.estimate',
      'L3.format',
      'L3.bias',
      'L3.fidelity',
      'L3.loss',
      'L4.stages',
      'L4.architecture',
      'L4.gain',
      'L5.feedback',
      'L5.cross',
    ]);
    expect(cs.map((c) => c.level)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5]);
    for (const c of cs) expect(c.why).not.toBe('');
  });

  it('L3 at 0.2 points; QAT and feedback are not-run with a reason', () => {
    const cs = runChecks(evidence(0.898));
    expect(levelEarned(cs)).toBe(3);
    for (const id of ['L4.stages', 'L4.architecture', 'L4.gain', 'L5.feedback', 'L5.cross']) {
      expect(byId(cs, id).pass).toBe('not-run');
      expect(byId(cs, id).why).not.toBe('');
    }
    expect(byId(cs, 'L3.loss').value).toBe(0.2);
    expect(badgeText(levelEarned(cs), '3.84')).toBe('quantization | L3 · QQI 3.84');
    expect(trusted(cs)).toBe(false);
  });

  it('loss boundaries: 1.0 point passes L1, 1.1 fails; 0.5 passes L3, 0.6 gives L2', () => {
    expect(levelEarned(runChecks(evidence(0.89)))).toBe(2); // 1.0 point: L1 ok, L3.loss fails
    expect(byId(runChecks(evidence(0.89)), 'L1.loss').pass).toBe(true);
    expect(levelEarned(runChecks(evidence(0.889)))).toBe(0);
    expect(levelEarned(runChecks(evidence(0.895)))).toBe(3); // 0.5 point
    expect(levelEarned(runChecks(evidence(0.894)))).toBe(2);
  });

  it('a gain passes the loss checks', () => {
    const cs = runChecks(evidence(0.91, { estimate: { lossPoints: -0.9, samples: 500 } }));
    expect(byId(cs, 'L1.loss').pass).toBe(true);
    expect(byId(cs, 'L1.loss').why).toMatch(/gain/);
    expect(levelEarned(cs)).toBe(3);
  });

  it('L1 needs the full split, a second identical run, and the validation', () => {
    expect(levelEarned(runChecks(evidence(0.898, { reproducibility: undefined })))).toBe(0);
    const r = runChecks(
      evidence(0.898, {
        reproducibility: { secondRunId: 'run-2', params: ['abc', 'abd'], metric: ['0.9', '0.9'] },
      }),
    );
    expect(byId(r, 'L1.reproducible').pass).toBe(false);
    const partial = evidence(0.898);
    partial.evaluation!.samples = 999;
    expect(byId(runChecks(partial), 'L1.runs').pass).toBe(false);
    const none = runChecks(evidence(0.898, { evaluation: undefined }));
    expect(byId(none, 'L1.runs').pass).toBe('not-run');
    expect(levelEarned(none)).toBe(0);
  });

  it('L2 boundaries: 100 samples pass, 101 fail; one method fails; 0.3-point estimate passes', () => {
    const cal = (samples: number) => ({ samples, split: 'calibration', sampler: 'coverage' });
    expect(levelEarned(runChecks(evidence(0.898, { calibration: cal(100) })))).toBe(3);
    expect(levelEarned(runChecks(evidence(0.898, { calibration: cal(101) })))).toBe(1);
    const evalSplit = { samples: 50, split: 'evaluation', sampler: 'random' };
    expect(byId(runChecks(evidence(0.898, { calibration: evalSplit })), 'L2.samples').pass).toBe(
      false,
    );
    const one = { a: { method: 'kl' }, b: { method: 'kl' } };
    expect(levelEarned(runChecks(evidence(0.898, { methods: one })))).toBe(1);
    expect(levelEarned(runChecks(evidence(0.898, { sensitivity: undefined })))).toBe(1);
    // measured 0.2 points: estimate 0.5 is 0.3 off (passes), 0.51 fails.
    expect(
      levelEarned(runChecks(evidence(0.898, { estimate: { lossPoints: 0.5, samples: 1 } }))),
    ).toBe(3);
    expect(
      levelEarned(runChecks(evidence(0.898, { estimate: { lossPoints: 0.51, samples: 1 } }))),
    ).toBe(1);
    expect(byId(runChecks(evidence(0.898, { estimate: undefined })), 'L2.estimate').pass).toBe(
      'not-run',
    );
  });

  it('L3 needs the native scheme, bias correction and fidelity; levels are cumulative', () => {
    const sym = usedScheme(t310, { weights: 'per-channel', activations: 'symmetric' });
    const cs = runChecks(evidence(0.898, { scheme: { used: sym, native: nativeScheme(t310) } }));
    expect(byId(cs, 'L3.format').pass).toBe(false);
    expect(levelEarned(cs)).toBe(2);
    expect(levelEarned(runChecks(evidence(0.898, { biasCorrection: false })))).toBe(2);
    // 'auto' left it off because the corrected model's estimated loss was higher: judged, passes.
    const judged = byId(
      runChecks(
        evidence(0.898, {
          biasCorrection: false,
          biasCorrectionAuto: { applied: false, corrected: 0.0147, uncorrected: 0.0059 },
        }),
      ),
      'L3.bias',
    );
    expect(judged.pass).toBe(true);
    expect(judged.value).toBe('auto: left off');
    expect(judged.why).toBe(
      'bias correction computed and left off: estimated loss 0.015 points corrected, 0.006 uncorrected',
    );
    expect(levelEarned(runChecks(evidence(0.898, { fidelity: undefined })))).toBe(2);
    // L3 checks all pass but L2 fails: L1 only.
    expect(
      levelEarned(
        runChecks(
          evidence(0.898, {
            calibration: { samples: 500, split: 'calibration', sampler: 'random' },
          }),
        ),
      ),
    ).toBe(1);
    expect(usedScheme(t310, { weights: 'per-channel', activations: 'target' })).toEqual(
      nativeScheme(t310),
    );
  });

  it('L4 and L5 with QAT, feedback and three targets; trusted with L5.cross', () => {
    const qat = {
      stages: [
        { tiers: ['low' as const], simulatedArithmetic: true },
        { tiers: ['low' as const, 'medium' as const], simulatedArithmetic: true },
        { tiers: ['low' as const, 'medium' as const, 'high' as const], simulatedArithmetic: true },
      ],
      stageLog: 'r2://qat/run-1.log',
      sameGraph: true,
      lossPoints: 0.1,
      ptqLossPoints: 0.2,
    };
    const round = {
      worstLayer: 'conv2',
      fromDeploymentReport: true,
      calibrationChanged: true,
      requantized: true,
      recoveryPoints: 0.4,
      storedInKnowledgeBase: true,
    };
    const cross = {
      ascend310p: { runId: 'run-3', lossPoints: 0.3 },
      'nvidia-t4': { runId: 'run-4', lossPoints: 0.5 },
    };
    const full = evidence(0.898, { qat, feedback: { rounds: [round] }, crossHardware: cross });
    const cs = runChecks(full);
    expect(levelEarned(cs)).toBe(5);
    expect(trusted(cs)).toBe(true);
    expect(byId(cs, 'L5.cross').value).toBe(3);
    // One target above 0.5: two within, not trusted, L4.
    const worse = runChecks({
      ...full,
      crossHardware: { ...cross, 'nvidia-t4': { runId: 'run-4', lossPoints: 0.6 } },
    });
    expect(trusted(worse)).toBe(false);
    expect(levelEarned(worse)).toBe(4);
    // QAT no better than PTQ; out-of-order stages; two stages.
    expect(levelEarned(runChecks({ ...full, qat: { ...qat, lossPoints: 0.2 } }))).toBe(3);
    const reversed = { ...qat, stages: [...qat.stages].reverse() };
    expect(runCheck('L4.stages', { ...full, qat: reversed }).pass).toBe(false);
    expect(
      runCheck('L4.stages', { ...full, qat: { ...qat, stages: qat.stages.slice(0, 2) } }).pass,
    ).toBe(false);
    // Trusted without L4: L5.cross alone sets the mark.
    const noQat = runChecks({ ...full, qat: undefined });
    expect(levelEarned(noQat)).toBe(3);
    expect(trusted(noQat)).toBe(true);
  });

  it('evidence from a pipeline result', () => {
    const e = evidenceFromPipeline(
      {
        task: 'smoke-fmnist',
        recipe: {
          name: 'r',
          format: { weights: 'per-channel', activations: 'target', biasCorrection: true },
        } as never,
        calibration: { samples: [1, 2, 3], sampler: 'coverage' },
        methods: { a: { method: 'max', tier: 'low' } },
        evaluation: {
          fp32: { top1: 0.9 },
          int8: { top1: 0.9 },
          comparison: compareMetric('top1', { top1: 0.9 }, { top1: 0.9 }),
          samples: 1000,
        },
      },
      t310,
      { runId: 'x', evaluationSplitSize: 1000 },
    );
    expect(e.calibration.samples).toBe(3);
    expect(e.sensitivity).toBeUndefined();
    const cs = runChecks(e);
    expect(byId(cs, 'L1.runs').pass).toBe(true);
    expect(byId(cs, 'L3.format').pass).toBe(true);
    expect(byId(cs, 'L2.sensitivity').pass).toBe(false);
    expect(byId(cs, 'L1.reproducible').pass).toBe('not-run');
  });
});
