// vitest setup file. Under CI the property tests draw from a fixed seed, so a CI run is
// reproducible: a local `CI=true bash .ci/run` draws exactly the cases the CI machine will.
// Elsewhere every run draws new cases (that is how bugs and tolerance edges get found; a failure
// prints its seed and path for fc.assert). ATTNC_FC_SEED sets the seed in either case.
import fc from 'fast-check';

const seed = process.env.ATTNC_FC_SEED ?? (process.env.CI ? '20261124' : undefined);
if (seed !== undefined) fc.configureGlobal({ seed: Number(seed) });
