/**
 * The OpenAPI 3.1 document of /api/v1 and its interactive reference page. The recipe schema is
 * generated from the same zod schema that validates submissions (z.toJSONSchema), so the
 * document cannot drift from the validator.
 */
import { z } from 'zod';
import { TARGETS } from '../../core/formats/targets.ts';
import { RecipeSchema } from '../../core/recipe/schema.ts';
import { LEADERBOARD_SORTS, LEADERBOARD_SOURCES } from '../../db/queries.ts';
import pkg from '../../package.json';

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});
const json = (description: string, ref: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
});
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: 'submission id (sub_...)',
};

/** The OpenAPI document (servers: the origin it is served from). */
export function openApiDocument(origin: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'cann-quant API',
      version: pkg.version,
      description:
        'Submit INT8 quantization recipes; the service re-executes them on the target chip’s arithmetic (sharded on Queues), scores them with the QQI and certifies L1-L5. Errors are RFC 9457 problem details; a path asked with a method it does not take answers 405 with an Allow header.',
    },
    servers: [{ url: `${origin}/api/v1` }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'cq_<id>_<secret>' },
      },
      schemas: {
        Recipe: z.toJSONSchema(RecipeSchema, { io: 'input', unrepresentable: 'any' }),
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            instance: { type: 'string' },
            errors: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  path: {
                    type: 'string',
                    description: 'JSON path of the field, e.g. calibration.samples',
                  },
                  expected: { type: 'string' },
                  got: { type: 'string' },
                },
              },
            },
          },
        },
        Submission: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            status: { enum: ['queued', 'running', 'scored', 'failed'] },
            submitter: { type: 'string' },
            recipe: { type: 'string' },
            recipeHash: { type: 'string' },
            task: { type: 'string' },
            target: { type: 'string' },
            error: { type: ['string', 'null'] },
            runs: {
              type: 'array',
              description:
                'the primary run and its independent reproduction, with shards done / total per phase',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  role: { enum: ['primary', 'reproduction'] },
                  shards: { type: 'integer' },
                  status: { type: 'string' },
                  phases: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        phase: { type: 'string' },
                        done: { type: 'integer' },
                        total: { type: 'integer' },
                      },
                    },
                  },
                },
              },
            },
            result: { oneOf: [{ $ref: '#/components/schemas/LeaderboardRow' }, { type: 'null' }] },
            links: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
        LeaderboardRow: {
          type: 'object',
          properties: Object.fromEntries(
            [
              ['rank', 'integer'],
              ['submissionId', 'string'],
              ['recipe', 'string'],
              ['submitter', 'string'],
              ['task', 'string'],
              ['target', 'string'],
              ['level', 'integer'],
              ['qqi', ['number', 'null']],
              ['metric', 'string'],
              ['fp32', 'number'],
              ['int8', 'number'],
              ['lossPoints', 'number'],
              ['estimatedLossPoints', ['number', 'null']],
              ['speedup', ['number', 'null']],
              ['energyGain', ['number', 'null']],
              ['calibrationSamples', 'integer'],
              ['importedFrom', ['string', 'null']],
              ['trusted', 'boolean'],
              ['underReview', 'boolean'],
              ['scoredAt', 'integer'],
            ].map(([k, t]) => [k, { type: t }]),
          ),
        },
        Report: {
          type: 'object',
          description:
            'the stored report: submission, recipe, reproduction run, report (metrics, per-layer quantization, perf roofline, QQI and factors, checks, level, badge), layerErrors (per-layer and per-channel heatmap data), reviewReason',
        },
      },
    },
    paths: {
      '/submissions': {
        post: {
          summary: 'Submit a recipe',
          description:
            'Validated with the CLI’s zod schema. The same recipe from the same submitter returns the existing submission (200); a new one is queued (202, Location header).',
          security: [{ bearer: [] }],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Recipe' } } },
          },
          responses: {
            '200': json('the existing submission of this recipe', 'Submission'),
            '202': json('queued; poll the Location', 'Submission'),
            '400': problem(
              'invalid JSON or recipe: errors[] gives each field path, what was expected and what was given',
            ),
            '401': problem('missing, unknown or revoked token'),
            '409': problem(
              'a different recipe of yours already has this name for this task and target',
            ),
            '413': problem('body larger than 64 KiB'),
            '415': problem('body is not application/json'),
            '429': problem('too many submissions; see Retry-After'),
          },
        },
      },
      '/models': {
        post: {
          summary: 'Upload a QAT model, or a model another framework quantized',
          description:
            'The ONNX bytes of a model trained by `cann-quant train` for a loaded task. Checked against the task’s reference graph (L4.architecture: same nodes, inputs, outputs, initializer names, types and shapes) and stored content-addressed; submit it with `qat: { model: <sha256>, stages }` in the recipe. Its loss is then measured against the FP32 reference model, beside a PTQ run of the same recipe on that model; a QAT model scoring above the reference is flagged for review. With `format=qdq`: a QDQ model another framework quantized (PyTorch, ONNX Runtime, ...), checked to be readable and to quantize the task’s model (every weighted layer within half a quantization step of its weights); submit it with `imported: { model: <sha256>, producer }` and its own scales are scored on the recipe’s target, without calibration (cross-framework quantization).',
          security: [{ bearer: [] }],
          parameters: [
            {
              name: 'task',
              in: 'query',
              required: true,
              schema: { type: 'string' },
              description: 'the task the model was trained for',
            },
            {
              name: 'format',
              in: 'query',
              required: false,
              schema: { type: 'string', enum: ['qat', 'qdq'], default: 'qat' },
              description: 'qat: a QAT-trained float model; qdq: a quantized QDQ model',
            },
          ],
          requestBody: {
            required: true,
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            },
          },
          responses: {
            '201': {
              description: 'stored',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['model', 'task', 'bytes'],
                    properties: {
                      model: {
                        type: 'string',
                        description: 'sha256 (hex): recipe.qat.model or recipe.imported.model',
                      },
                      task: { type: 'string' },
                      format: { type: 'string', enum: ['qat', 'qdq'] },
                      bytes: { type: 'integer' },
                      architecture: { type: 'string' },
                    },
                  },
                },
              },
            },
            '400': problem('no ?task=, or an unknown ?format='),
            '401': problem('missing, unknown or revoked token'),
            '404': problem('task not loaded'),
            '413': problem('larger than 2x the reference model or 32 MiB'),
            '415': problem('body is not application/octet-stream'),
            '422': problem(
              'not an ONNX model, not the reference graph (L4.architecture), or (qdq) not a readable QDQ model of the task’s model',
            ),
          },
        },
      },
      '/submissions/{id}': {
        get: {
          summary: 'Status and progress of a submission',
          parameters: [idParam],
          responses: { '200': json('the submission', 'Submission'), '404': problem('unknown id') },
        },
      },
      '/submissions/{id}/report': {
        get: {
          summary: 'Full report of a scored submission',
          parameters: [idParam],
          responses: {
            '200': json('the report', 'Report'),
            '404': problem('unknown id'),
            '409': problem('not scored (yet, or it failed)'),
          },
        },
      },
      '/leaderboard': {
        get: {
          summary: 'Ranked scored submissions (JSON or CSV)',
          parameters: [
            { name: 'task', in: 'query', schema: { type: 'string' } },
            { name: 'target', in: 'query', schema: { enum: Object.keys(TARGETS) } },
            {
              name: 'targets',
              in: 'query',
              schema: { type: 'string' },
              description:
                'a comma-separated list of targets (e.g. ascend310-w4a8,ascend310p-w4a8)',
            },
            {
              name: 'level',
              in: 'query',
              schema: { type: 'integer', minimum: 0, maximum: 5 },
              description: 'minimum level',
            },
            { name: 'min_qqi', in: 'query', schema: { type: 'number' } },
            {
              name: 'source',
              in: 'query',
              schema: { enum: [...LEADERBOARD_SOURCES] },
              description:
                'calibrated here, imported from another framework (recipe.imported), or a QAT model (recipe.qat)',
            },
            { name: 'sort', in: 'query', schema: { enum: [...LEADERBOARD_SORTS], default: 'qqi' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
            { name: 'format', in: 'query', schema: { enum: ['json', 'csv'], default: 'json' } },
          ],
          responses: {
            '200': {
              description: 'rows',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      count: { type: 'integer' },
                      rows: {
                        type: 'array',
                        items: { $ref: '#/components/schemas/LeaderboardRow' },
                      },
                    },
                  },
                },
                'text/csv': { schema: { type: 'string' } },
              },
            },
            '400': problem('bad filter'),
          },
        },
      },
      '/tasks': {
        get: {
          summary: 'Benchmark tasks loaded on this server (manifests; never labels)',
          responses: { '200': { description: 'tasks' } },
        },
      },
      '/tasks/{id}': {
        get: {
          summary: 'One task',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'the task' }, '404': problem('unknown task') },
        },
      },
      '/tasks/{id}/risk': {
        get: {
          summary:
            "Data-free risk predictor: each layer's predicted INT8 noise (SQNR) on a target from the task's model alone (docs/RISK.md)",
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            {
              name: 'target',
              in: 'query',
              schema: { type: 'string', default: 'ascend310' },
              description: "a target id, or 'all' for one report per target",
            },
            {
              name: 'weights',
              in: 'query',
              schema: { type: 'string', enum: ['per-channel', 'per-tensor'] },
            },
            {
              name: 'input_stats',
              in: 'query',
              schema: { type: 'string' },
              description:
                "what you know of a float input, [name=]mean,std,min,max (e.g. its normalisation): covers the first layer's input",
            },
          ],
          responses: {
            '200': { description: 'the risk report (or reports)' },
            '400': problem('unknown target or weights'),
            '404': problem('unknown task'),
          },
        },
      },
      '/targets': {
        get: {
          summary: 'Hardware targets with their INT8 formats and sourced peak figures',
          responses: { '200': { description: 'targets' } },
        },
      },
      '/templates': {
        get: {
          summary: 'Recipe templates by scenario',
          responses: { '200': { description: 'templates' } },
        },
      },
      '/tokens': {
        post: {
          summary: 'Create a token for a submitter (admin); the token is shown once',
          security: [{ bearer: [] }],
          requestBody: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['submitter'],
                  properties: {
                    submitter: { type: 'string' },
                    role: { enum: ['submitter', 'admin'] },
                  },
                },
              },
            },
          },
          responses: {
            '201': { description: 'the token' },
            '401': problem('no token'),
            '403': problem('not an admin'),
          },
        },
      },
      '/tokens/{id}': {
        delete: {
          summary: 'Revoke a token (your own, or any as admin)',
          security: [{ bearer: [] }],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '204': { description: 'revoked' },
            '403': problem('not yours'),
            '404': problem('unknown token'),
          },
        },
      },
    },
  };
}

/**
 * A self-contained interactive reference (no CDN, no framework): lists every operation of the
 * document with its parameters and responses, and a form that sends the request from the page.
 */
export function referencePage(specUrl: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>cann-quant API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:0 auto;padding:1rem;color:#1b1b1b}
h1{font-size:1.4rem}details{border:1px solid #ccc;border-radius:6px;margin:.5rem 0;padding:.4rem .8rem}
summary{cursor:pointer;font-weight:600}code,pre,textarea,input{font:13px ui-monospace,monospace}
.m{display:inline-block;min-width:4.5em;color:#fff;border-radius:4px;padding:0 .4em;text-align:center}
.get{background:#1565c0}.post{background:#2e7d32}.delete{background:#c62828}
pre{background:#f5f5f5;padding:.5rem;overflow:auto;max-height:24rem}label{display:block;margin:.2rem 0}
input,textarea{width:100%;box-sizing:border-box}button{margin-top:.4rem}
</style></head><body>
<h1>cann-quant API reference</h1>
<p>OpenAPI document: <a href="${specUrl}">${specUrl}</a>. Try a request below; a token goes in the Authorization header.</p>
<label>Bearer token <input id="token" autocomplete="off" placeholder="cq_..."></label>
<div id="ops">Loading…</div>
<script>
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
fetch(${JSON.stringify(specUrl)}).then(r=>r.json()).then(doc=>{
  const base=doc.servers[0].url;const ops=document.getElementById('ops');ops.textContent='';
  for(const [path,item] of Object.entries(doc.paths))for(const [method,op] of Object.entries(item)){
    const d=document.createElement('details');const params=op.parameters||[];
    d.innerHTML='<summary><span class="m '+method+'">'+method.toUpperCase()+'</span> <code>'+esc(path)+'</code> '+esc(op.summary||'')+'</summary>'
      +(op.description?'<p>'+esc(op.description)+'</p>':'')
      +params.map(p=>'<label>'+esc(p.name)+' ('+p.in+(p.required?', required':'')+') <input data-p="'+esc(p.name)+'" data-in="'+p.in+'"></label>').join('')
      +(op.requestBody?'<label>JSON body <textarea rows="8"></textarea></label>':'')
      +'<p>Responses: '+Object.entries(op.responses).map(([k,v])=>'<code>'+k+'</code> '+esc(v.description)).join('; ')+'</p>'
      +'<button type="button">Send</button><pre hidden></pre>';
    d.querySelector('button').onclick=async()=>{
      let url=path;const q=new URLSearchParams();
      for(const i of d.querySelectorAll('input[data-p]')){if(!i.value)continue;if(i.dataset.in==='path')url=url.replace('{'+i.dataset.p+'}',encodeURIComponent(i.value));else q.set(i.dataset.p,i.value);}
      const h={};const t=document.getElementById('token').value.trim();if(t)h.authorization='Bearer '+t;
      const ta=d.querySelector('textarea');const init={method:method.toUpperCase(),headers:h};
      if(ta&&ta.value){h['content-type']='application/json';init.body=ta.value;}
      const res=await fetch(base+url+(q.size?'?'+q:''),init);const pre=d.querySelector('pre');pre.hidden=false;
      pre.textContent=res.status+' '+res.statusText+'\\n'+(await res.text());
    };
    ops.appendChild(d);
  }
}).catch(e=>{document.getElementById('ops').textContent='Cannot load the document: '+e;});
</script></body></html>`;
}
