export interface OutputSummary { length: number; sum: number; sumAbs: number; maxAbs: number; samples: [number, number][] }
export function seededInput(shape: number[], seed?: number): Float32Array;
export function summarize(data: ArrayLike<number>): OutputSummary;
export function errorAgainstSummary(data: ArrayLike<number>, ref: OutputSummary): number;
export function relativeMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number;
