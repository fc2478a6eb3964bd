// The generic grecs syntax tree the grammar produces: statements, blocks and values.
// Nothing here knows a keyword; config/schema.ts gives statements their meaning.

/** A position in a config file: 1-based line and column, as a user reads them. */
export interface Location {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** An unquoted word (grecs IDENT or STRING). */
export interface WordNode {
  readonly type: 'Word';
  readonly value: string;
  readonly location: Location;
}

/** One or more adjacent quoted strings, already unescaped and concatenated. */
export interface StringNode {
  readonly type: 'String';
  readonly value: string;
  readonly location: Location;
}

/** A here-document; `value` is the body after tab stripping and unescaping. */
export interface HereDocNode {
  readonly type: 'HereDoc';
  readonly value: string;
  readonly location: Location;
}

/** `( a, b, … )`, possibly nested. */
export interface ListNode {
  readonly type: 'List';
  readonly items: readonly ValueNode[];
  readonly location: Location;
}

export type ScalarNode = WordNode | StringNode | HereDocNode;
export type ValueNode = ScalarNode | ListNode;

/** `name values… ;` or `name values… { statements }`. */
export interface StatementNode {
  readonly type: 'Statement';
  readonly name: string;
  readonly location: Location;
  readonly values: readonly ValueNode[];
  /** Present for block statements (possibly empty), absent for simple ones. */
  readonly block?: readonly Node[];
}

/** `#include FILE`, `#include_once FILE`; resolved by config/load.ts. */
export interface IncludeNode {
  readonly type: 'Include';
  readonly once: boolean;
  /** `<FILE>` searches only the include path. */
  readonly system: boolean;
  readonly target: string;
  readonly location: Location;
}

export type Node = StatementNode | IncludeNode;

export interface FileNode {
  readonly type: 'File';
  readonly file: string;
  readonly body: readonly Node[];
}
