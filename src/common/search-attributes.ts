/** Typed search attribute keys; registered at dev-server start (see src/workers/dev.ts). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TaskProjectKey = defineSearchAttributeKey('TaskProject', SearchAttributeType.KEYWORD);
export const TaskNodeKey = defineSearchAttributeKey('TaskNode', SearchAttributeType.KEYWORD);
export const TaskStatusKey = defineSearchAttributeKey('TaskStatus', SearchAttributeType.KEYWORD);
export const TaskPriorityKey = defineSearchAttributeKey('TaskPriority', SearchAttributeType.INT);

/** For `temporal server start-dev --search-attribute`. */
export const SEARCH_ATTRIBUTE_FLAGS = ['TaskProject=Keyword', 'TaskNode=Keyword', 'TaskStatus=Keyword', 'TaskPriority=Int'];
