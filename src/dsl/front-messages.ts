// The front end's wording of mistakes (front-features.ts): the parse error messages and the
// "did you mean" hints. Only a program with an error loads it.
export { errorMessageProvider } from './parser-messages.js';
export { didYouMean, foreignFunctionHint, foreignHint, undeclaredHint } from './suggest.js';
