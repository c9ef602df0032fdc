// Every front-end feature imported statically: the table `compile` (attnc, attnc/wgsl), the CLI
// and dsl/index.ts's frontend use. Each front-*.ts module exports exactly its feature
// (front-features.ts types them).
import * as messages from './front-messages.js';
import * as operandQuant from './front-operand-quant.js';
import * as sparsity from './front-sparsity.js';
import * as storage from './front-storage.js';
import type { FrontFeatures } from './front-features.js';

export const eagerFrontFeatures: FrontFeatures = { sparsity, storage, operandQuant, messages };
